import type { ForgotPasswordData, ForgotPasswordResponses } from '../generated/types.gen.ts';
import { acceptEmailJob } from '../lib/emailJobs.ts';
import type { Operation } from '../http/operation.ts';

// The worker mints the token and mails it only when an account has this email (lib/recovery.ts).
export const forgotPassword: Operation<ForgotPasswordData, ForgotPasswordResponses> = async (c, ctx, deps) => {
  await acceptEmailJob(deps, 'recovery_request', c.request.requestBody.email, ctx.ip);
  return { status: 202, body: { message: 'If an account has this email, a password recovery link is on its way.' } };
};
