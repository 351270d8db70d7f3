import type { ForgotPasswordData, ForgotPasswordResponses } from '../generated/types.gen.ts';
import { enqueueJob } from '../db/outbox.ts';
import { consume, limitKey } from '../lib/limits.ts';
import type { Operation } from './types.ts';

const MESSAGE = 'If an account has this email, a password recovery link is on its way.';

/**
 * The request does the same work whatever the email: count it, queue one job row, answer 202.
 * The account lookup, the token and the email happen in the delivery worker after the answer is
 * gone (lib/recovery.ts), so status, body and timing are the same whether or not it exists.
 */
export const forgotPassword: Operation<ForgotPasswordData, ForgotPasswordResponses> = async (c, ctx, { config, db, wakeMailer }) => {
  const email = c.request.requestBody.email.toLowerCase();
  // Counted per request, not per email sent, and whether or not an account has the email, so a
  // 429 tells nothing either. Registration's own email does not touch these counters.
  await consume(db, [
    { key: limitKey('forgot-minute', email), rule: config.limits.emailMinute },
    { key: limitKey('forgot-hour', email), rule: config.limits.emailHour },
    { key: limitKey('forgot-ip', ctx.ip), rule: config.limits.emailIp },
  ]);
  await enqueueJob(db, 'recovery_request', email);
  wakeMailer();
  return { status: 202, body: { message: MESSAGE } };
};
