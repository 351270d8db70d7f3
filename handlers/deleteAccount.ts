import type { DeleteAccountData, DeleteAccountResponses } from '../generated/types.gen.ts';
import { withRetry } from '../db/retry.ts';
import { deleteAccountRow, lockAccount } from '../db/accounts.ts';
import { deleteMailOf, enqueueMail } from '../db/outbox.ts';
import { deleteCounters } from '../db/rateLimits.ts';
import { findPendingEmail } from '../db/verificationCodes.ts';
import { countersOf } from '../lib/limits.ts';
import { accountGone } from '../lib/problems.ts';
import { reauthenticate } from '../lib/reauth.ts';
import { requireJwtOwner } from '../http/security.ts';
import type { Operation } from '../http/operation.ts';

// The right to erasure (GDPR art. 17): the account and everything that names it go in one
// transaction. Sessions, API keys, codes and recovery tokens go by ON DELETE CASCADE, so every
// instance refuses the account's credentials from the next request on (the credential lookups
// join the account row). Mail and counters name the account by address, so they are found by it.
export const deleteAccount: Operation<DeleteAccountData, DeleteAccountResponses> = async (c, ctx, deps) => {
  const { db, log, wakeOutboxWorker } = deps;
  const owner = requireJwtOwner(c, 'Deleting the account needs a session; sign in and use the session token.');
  const { password, google_credential } = c.request.requestBody;
  const account = await reauthenticate(deps, owner.account, { password, google_credential }, ctx.ip);

  const deleted = await withRetry(
    db,
    async (trx) => {
      // Locked first, so an email change or key creation under way either lands before (and goes
      // with the account) or finds it gone; and the email read here is the one it has at the end.
      const current = await lockAccount(trx, account.id);
      if (!current) return false;
      await deleteCounters(trx, countersOf(current, await findPendingEmail(trx, current.id)));
      await deleteMailOf(trx, current);
      await deleteAccountRow(trx, current.id);
      // No foreign key ties the goodbye to the account; its row forgets the address once sent.
      await enqueueMail(trx, {
        kind: 'account_deleted',
        recipient: current.email,
        payload: { username: current.username },
      });
      return true;
    },
    log,
  );
  if (!deleted) throw accountGone();
  wakeOutboxWorker();
  return { status: 204, body: undefined };
};
