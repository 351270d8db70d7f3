import type { RevokeApiKeyData, RevokeApiKeyResponses } from '../generated/types.gen.ts';
import { notImplemented } from '../lib/problem.ts';
import type { Operation } from './types.ts';

export const revokeApiKey: Operation<RevokeApiKeyData, RevokeApiKeyResponses> = async () => notImplemented();
