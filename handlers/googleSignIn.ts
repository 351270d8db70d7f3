import type { GoogleSignInData, GoogleSignInResponses } from '../generated/types.gen.ts';
import { notImplemented } from '../lib/problem.ts';
import type { Operation } from './types.ts';

export const googleSignIn: Operation<GoogleSignInData, GoogleSignInResponses> = async () => notImplemented();
