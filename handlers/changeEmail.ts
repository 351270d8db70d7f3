import type { ChangeEmailData, ChangeEmailResponses } from '../generated/types.gen.ts';
import { withRetry } from '../db/retry.ts';
import { findAccountByEmail, lockAccount } from '../db/accounts.ts';
import { consume, limitKey } from '../lib/limits.ts';
import { accountGone, problem } from '../lib/problems.ts';
import { reauthenticate } from '../lib/reauth.ts';
import { issueEmailChangeCode } from '../lib/verification.ts';
import { requireJwtOwner } from '../http/security.ts';
import type { Operation } from '../http/operation.ts';

export const changeEmail: Operation<ChangeEmailData, ChangeEmailResponses> = async (c, ctx, deps) => {
  const { config, db, codeKey, log, wakeOutboxWorker } = deps;
  const owner = requireJwtOwner(c, 'Changing the email needs a session; sign in and use the session token.');
  const { new_email: rawEmail, password, google_credential } = c.request.requestBody;
  const newEmail = rawEmail.toLowerCase();
  // Re-authentication first: a stolen session token alone learns nothing here, not even whether
  // an address is taken.
  const account = await reauthenticate(deps, owner.account, { password, google_credential }, ctx.ip);
  // The limits of resend-verification for the address (mail to someone else's inbox), and per
  // account, so `email_taken` tells no more than registration does.
  await consume(db, [
    { key: limitKey('email-change-minute', newEmail), rule: config.limits.emailMinute },
    { key: limitKey('email-change-hour', newEmail), rule: config.limits.emailHour },
    { key: limitKey('email-change-account', account.id), rule: config.limits.emailHour },
    { key: limitKey('email-change-ip', ctx.ip), rule: config.limits.emailIp },
  ]);
  if (newEmail === account.email)
    throw problem('email_taken', { detail: 'That is already the email of this account.' });
  // A cheap look spares the mail; the unique index decides when the code is confirmed.
  if (await findAccountByEmail(db, newEmail))
    throw problem('email_taken', { detail: 'Another account has that email.' });

  const started = await withRetry(
    db,
    async (trx) => {
      // The row lock orders this with a concurrent deletion of the account: either the code row is
      // written before the account goes (and goes with it), or the account is found gone.
      if (!(await lockAccount(trx, account.id))) return false;
      await issueEmailChangeCode(trx, codeKey, account, newEmail);
      return true;
    },
    log,
  );
  if (!started) throw accountGone();
  wakeOutboxWorker();
  return {
    status: 202,
    body: {
      message: 'A six-digit code is on its way to the new address; confirm it with POST /v1/me/email/verify.',
    },
  };
};
