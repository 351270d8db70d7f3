import type { UnlinkGoogleData, UnlinkGoogleResponses } from '../generated/types.gen.ts';
import { notImplemented } from '../lib/problem.ts';
import type { Operation } from './types.ts';

export const unlinkGoogle: Operation<UnlinkGoogleData, UnlinkGoogleResponses> = async () => notImplemented();
