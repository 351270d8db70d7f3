import type { VerifyEmailChangeData, VerifyEmailChangeResponses } from '../generated/types.gen.ts';
import { withRetry } from '../db/retry.ts';
import { lockAccount, setVerifiedEmail, toOwnerRow, uniqueConflict } from '../db/accounts.ts';
import { enqueueMail } from '../db/outbox.ts';
import { deleteCounters } from '../db/rateLimits.ts';
import { useUpRecoveryTokens } from '../db/recoveryTokens.ts';
import { endSessions } from '../db/sessions.ts';
import { consumeCode, findPendingEmail, spendEmailChangeAttempt } from '../db/verificationCodes.ts';
import { consume, emailCounters, limitKey } from '../lib/limits.ts';
import { problem } from '../lib/problems.ts';
import { hashEmailChangeCode, sameCodeHash } from '../lib/verification.ts';
import { requireJwtOwner } from '../http/security.ts';
import type { Operation } from '../http/operation.ts';
import { accountView } from '../http/views.ts';

// Wrong, expired, used, and no change pending all get this one answer.
const invalidCode = () => problem('invalid_code', { detail: 'Check the code, or start the change again.' });

export const verifyEmailChange: Operation<VerifyEmailChangeData, VerifyEmailChangeResponses> = async (
  c,
  ctx,
  { config, db, codeKey, log, wakeOutboxWorker },
) => {
  const owner = requireJwtOwner(c, 'Changing the email needs a session; sign in and use the session token.');
  const accountId = owner.account.id;
  // The limits of verify-email, keyed by the address the code proves: beyond each code's 5 tries,
  // at most 20 wrong codes per address per day however many changes are started.
  const pending = await findPendingEmail(db, accountId);
  await consume(db, [
    { key: limitKey('verify-ip', ctx.ip), rule: config.limits.verifyIp },
    { key: limitKey('verify-fail', pending ?? accountId), rule: config.limits.verifyDaily },
  ]);
  const live = await spendEmailChangeAttempt(db, accountId);
  const { code } = c.request.requestBody;
  if (!live || !sameCodeHash(live.code_hash, hashEmailChangeCode(codeKey, accountId, live.new_email, code)))
    throw invalidCode();

  let outcome: Awaited<ReturnType<typeof setVerifiedEmail>> | 'used';
  try {
    outcome = await withRetry(
      db,
      async (trx) => {
        const before = await lockAccount(trx, accountId);
        if (!before || !(await consumeCode(trx, accountId, live.code_hash))) return 'used';
        // The unique index on email decides a race for the address (another account's change, or a
        // registration): the loser's transaction fails here and changes nothing.
        const after = await setVerifiedEmail(trx, accountId, live.new_email);
        await enqueueMail(trx, {
          kind: 'email_changed',
          recipient: before.email,
          payload: { username: before.username, account_id: accountId, new_email: live.new_email },
        });
        // Recovery links went to the old address; sessions may be someone else's who knew it. The
        // old address's counters name an address the account no longer has: forgotten with it.
        await useUpRecoveryTokens(trx, accountId);
        await deleteCounters(trx, emailCounters(before.email));
        await endSessions(trx, accountId, { except: owner.sessionId });
        return after;
      },
      log,
    );
  } catch (err) {
    if (uniqueConflict(err) === 'email')
      throw problem('email_taken', { detail: 'Another account has that email now.' });
    throw err;
  }
  if (outcome === 'used' || outcome === undefined) throw invalidCode();
  wakeOutboxWorker();
  return { status: 200, body: accountView(toOwnerRow(outcome)) };
};
