import type { ResendVerificationData, ResendVerificationResponses } from '../generated/types.gen.ts';
import { enqueueJob } from '../db/outbox.ts';
import { consume, limitKey } from '../lib/limits.ts';
import type { Operation } from './types.ts';

const MESSAGE = 'If an unverified account has this email, a new verification code is on its way.';

/**
 * The request does the same work whatever the email: count it, queue one job row, answer 202.
 * Whether an unverified account has the email is decided by the delivery worker, after the
 * answer is gone, so neither the body nor the timing tells (lib/verification.ts).
 */
export const resendVerification: Operation<ResendVerificationData, ResendVerificationResponses> = async (c, ctx, { config, db, wakeMailer }) => {
  const email = c.request.requestBody.email.toLowerCase();
  // Counted per request, not per email sent, and whether or not an account has the email, so a
  // 429 tells nothing either. Registration's own email does not touch these counters.
  await consume(db, [
    { key: limitKey('resend-minute', email), rule: config.limits.emailMinute },
    { key: limitKey('resend-hour', email), rule: config.limits.emailHour },
    { key: limitKey('resend-ip', ctx.ip), rule: config.limits.emailIp },
  ]);
  await enqueueJob(db, 'verification_request', email);
  wakeMailer();
  return { status: 202, body: { message: MESSAGE } };
};
