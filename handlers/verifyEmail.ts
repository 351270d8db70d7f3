import type { VerifyEmailData, VerifyEmailResponses } from '../generated/types.gen.ts';
import { markEmailVerified } from '../db/accounts.ts';
import { withRetry } from '../db/retry.ts';
import { consumeCode, spendCodeAttempt } from '../db/verificationCodes.ts';
import { consume, limitKey } from '../lib/limits.ts';
import { problem } from '../lib/problems.ts';
import { hashCode, sameCodeHash } from '../lib/verification.ts';
import type { Operation } from '../http/operation.ts';

// Wrong, expired, used and unknown-email all get this one answer.
const invalidCode = () => problem('invalid_code', { detail: 'Check the code, or ask for a new one.' });

export const verifyEmail: Operation<VerifyEmailData, VerifyEmailResponses> = async (
  c,
  ctx,
  { config, db, codeKey, log },
) => {
  const email = c.request.requestBody.email.toLowerCase();
  const { code } = c.request.requestBody;
  // Beyond each code's 5 tries, at most 20 wrong codes per email per day, so asking for new
  // codes cannot multiply guesses. Every attempt is counted before the code is looked at, so
  // concurrent guesses cannot all slip under the cap. Keyed by the email whether or not an
  // account has it, so the 429 reveals nothing.
  const dailyKey = limitKey('verify-fail', email);
  await consume(db, [
    { key: limitKey('verify-ip', ctx.ip), rule: config.limits.verifyIp },
    { key: dailyKey, rule: config.limits.verifyDaily },
  ]);

  const live = await spendCodeAttempt(db, email);
  if (!live || !sameCodeHash(live.code_hash, hashCode(codeKey, live.account_id, code))) throw invalidCode();

  const won = await withRetry(
    db,
    async (trx) => {
      if (!(await consumeCode(trx, live.account_id, live.code_hash))) return false;
      await markEmailVerified(trx, live.account_id);
      return true;
    },
    log,
  );
  if (!won) throw invalidCode();
  return { status: 200, body: { email, email_verified: true } };
};
