import type { ForgotPasswordData, ForgotPasswordResponses } from '../generated/types.gen.ts';
import { acceptEmailJob } from './emailJob.ts';
import type { Operation } from './types.ts';

// The worker mints the token and mails it only when an account has this email (lib/recovery.ts).
export const forgotPassword: Operation<ForgotPasswordData, ForgotPasswordResponses> = async (c, ctx, deps) => {
  await acceptEmailJob(ctx, deps, 'recovery_request', c.request.requestBody.email);
  return { status: 202, body: { message: 'If an account has this email, a password recovery link is on its way.' } };
};
