import type { GetAccountData, GetAccountResponses } from '../generated/types.gen.ts';
import { requireOwner } from '../http/security.ts';
import type { Operation } from '../http/operation.ts';
import { accountView } from '../http/views.ts';

// The security handler already loaded the account with the credential: no second query.
export const getAccount: Operation<GetAccountData, GetAccountResponses> = async (c) => ({
  status: 200,
  body: accountView(requireOwner(c).account),
});
