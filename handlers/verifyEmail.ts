import { timingSafeEqual } from 'node:crypto';
import type { VerifyEmailData, VerifyEmailResponses } from '../generated/types.gen.ts';
import { markEmailVerified } from '../db/accounts.ts';
import { hitCounter, peekCounter } from '../db/rateLimits.ts';
import { consumeCode, spendCodeAttempt } from '../db/verificationCodes.ts';
import { consume, limitKey } from '../lib/limits.ts';
import { Problem, tooManyRequests } from '../lib/problem.ts';
import { hashCode } from '../lib/verification.ts';
import type { Operation } from './types.ts';

// Wrong, expired, used and unknown-email all get this one answer.
const invalidCode = () => new Problem(400, 'invalid_code', 'Invalid or expired code', { detail: 'Check the code, or ask for a new one.' });

export const verifyEmail: Operation<VerifyEmailData, VerifyEmailResponses> = async (c, ctx, { config, db, codeKey }) => {
  const email = c.request.requestBody.email.toLowerCase();
  const { code } = c.request.requestBody;
  await consume(db, [{ key: limitKey('verify-ip', ctx.ip), rule: config.limits.verifyIp }]);

  // Beyond each code's 5 tries, at most 20 wrong codes per email per day, so asking for new
  // codes cannot multiply guesses.
  const dailyKey = limitKey('verify-fail', email);
  const daily = await peekCounter(db, dailyKey, config.limits.verifyDaily.windowSeconds);
  if (daily.count >= config.limits.verifyDaily.limit) throw tooManyRequests(daily.resetIn);

  const live = await spendCodeAttempt(db, email);
  const expected = live ? Buffer.from(live.code_hash) : undefined;
  const given = live ? Buffer.from(hashCode(codeKey, live.account_id, code)) : undefined;
  const matches = !!expected && !!given && expected.length === given.length && timingSafeEqual(expected, given);
  if (!live || !matches) {
    await hitCounter(db, dailyKey, config.limits.verifyDaily.windowSeconds);
    throw invalidCode();
  }

  const won = await db.transaction(async (trx) => {
    if (!(await consumeCode(trx, live.account_id, live.code_hash))) return false;
    await markEmailVerified(trx, live.account_id);
    return true;
  });
  if (!won) throw invalidCode();
  return { status: 200, body: { email, email_verified: true } };
};
