import type { UnlinkGoogleData, UnlinkGoogleResponses } from '../generated/types.gen.ts';
import { findAccountById, toOwnerRow, unlinkGoogleSub } from '../db/accounts.ts';
import { requireOwner } from '../http/security.ts';
import { problem } from '../lib/problems.ts';
import type { Operation } from '../http/operation.ts';
import { accountView } from '../http/views.ts';

export const unlinkGoogle: Operation<UnlinkGoogleData, UnlinkGoogleResponses> = async (c, _ctx, { db }) => {
  const { account } = requireOwner(c);
  // The conditional UPDATE decides; the read after it only explains a refusal. A second round
  // covers the one case where the row changed in between (a password set, Google re-linked).
  for (let round = 0; round < 2; round++) {
    const updated = await unlinkGoogleSub(db, account.id);
    if (updated) return { status: 200, body: accountView(toOwnerRow(updated)) };
    const current = await findAccountById(db, account.id);
    if (!current)
      throw problem('unauthorized', {
        headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
      });
    if (current.google_sub === null) throw problem('google_not_linked');
    if (current.password_hash === null) {
      throw problem('password_required', {
        detail: 'Without a password the account could not sign in any more. Use password recovery to set one.',
      });
    }
  }
  throw new Error('unlinkGoogle: the account kept changing');
};
