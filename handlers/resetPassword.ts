import type { ResetPasswordData, ResetPasswordResponses } from '../generated/types.gen.ts';
import { notImplemented } from '../lib/problem.ts';
import type { Operation } from './types.ts';

export const resetPassword: Operation<ResetPasswordData, ResetPasswordResponses> = async () => notImplemented();
