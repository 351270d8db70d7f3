import type { ForgotPasswordData, ForgotPasswordResponses } from '../generated/types.gen.ts';
import { notImplemented } from '../lib/problem.ts';
import type { Operation } from './types.ts';

export const forgotPassword: Operation<ForgotPasswordData, ForgotPasswordResponses> = async () => notImplemented();
