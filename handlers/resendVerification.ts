import type { ResendVerificationData, ResendVerificationResponses } from '../generated/types.gen.ts';
import { acceptEmailJob } from '../lib/emailJobs.ts';
import type { Operation } from '../http/operation.ts';

// The worker sends a new code only to an unverified account with this email (lib/verification.ts).
export const resendVerification: Operation<ResendVerificationData, ResendVerificationResponses> = async (
  c,
  ctx,
  deps,
) => {
  await acceptEmailJob(deps, 'verification_request', c.request.requestBody.email, ctx.ip);
  return {
    status: 202,
    body: { message: 'If an unverified account has this email, a new verification code is on its way.' },
  };
};
