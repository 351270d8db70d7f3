import type { CreateApiKeyData, CreateApiKeyResponses } from '../generated/types.gen.ts';
import { notImplemented } from '../lib/problem.ts';
import type { Operation } from './types.ts';

export const createApiKey: Operation<CreateApiKeyData, CreateApiKeyResponses> = async () => notImplemented();
