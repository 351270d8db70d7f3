import type { RevokeApiKeyData, RevokeApiKeyResponses } from '../generated/types.gen.ts';
import { revokeActiveApiKey } from '../db/apiKeys.ts';
import { requireJwtOwner } from '../http/security.ts';
import { problem } from '../lib/problems.ts';
import type { Operation } from '../http/operation.ts';

// Unknown, already revoked and another account's key get the same 404, so key ids of other
// accounts cannot be probed. No cache sits in front of authentication: the next request with a
// revoked key is refused.
export const revokeApiKey: Operation<RevokeApiKeyData, RevokeApiKeyResponses> = async (c, _ctx, { db }) => {
  const owner = requireJwtOwner(c);
  if (!(await revokeActiveApiKey(db, owner.account.id, c.request.params.key_id))) {
    throw problem('api_key_not_found', {
      detail: 'This account has no active API key with that id.',
    });
  }
  return { status: 204, body: undefined };
};
