import type { VerifyEmailData, VerifyEmailResponses } from '../generated/types.gen.ts';
import { notImplemented } from '../lib/problem.ts';
import type { Operation } from './types.ts';

export const verifyEmail: Operation<VerifyEmailData, VerifyEmailResponses> = async () => notImplemented();
