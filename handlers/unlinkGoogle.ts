import type { UnlinkGoogleData, UnlinkGoogleResponses } from '../generated/types.gen.ts';
import { findAccountById, toOwnerRow, unlinkGoogleSub } from '../db/accounts.ts';
import { requireOwner } from '../lib/auth.ts';
import { Problem } from '../lib/problem.ts';
import type { Operation } from './types.ts';
import { accountView } from './views.ts';

export const unlinkGoogle: Operation<UnlinkGoogleData, UnlinkGoogleResponses> = async (c, _ctx, { db }) => {
  const { account } = requireOwner(c);
  // The conditional UPDATE decides; the read after it only explains a refusal. A second round
  // covers the one case where the row changed in between (a password set, Google re-linked).
  for (let round = 0; round < 2; round++) {
    const updated = await unlinkGoogleSub(db, account.id);
    if (updated) return { status: 200, body: accountView(toOwnerRow(updated)) };
    const current = await findAccountById(db, account.id);
    if (!current)
      throw new Problem(401, 'unauthorized', 'Authentication required', {
        headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
      });
    if (current.google_sub === null)
      throw new Problem(409, 'google_not_linked', 'Google is not linked to this account');
    if (current.password_hash === null) {
      throw new Problem(409, 'password_required', 'Set a password before unlinking Google', {
        detail: 'Without a password the account could not sign in any more. Use password recovery to set one.',
      });
    }
  }
  throw new Error('unlinkGoogle: the account kept changing');
};
