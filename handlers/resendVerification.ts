import type { ResendVerificationData, ResendVerificationResponses } from '../generated/types.gen.ts';
import { notImplemented } from '../lib/problem.ts';
import type { Operation } from './types.ts';

export const resendVerification: Operation<ResendVerificationData, ResendVerificationResponses> = async () => notImplemented();
