import type { ListApiKeysData, ListApiKeysResponses } from '../generated/types.gen.ts';
import { notImplemented } from '../lib/problem.ts';
import type { Operation } from './types.ts';

export const listApiKeys: Operation<ListApiKeysData, ListApiKeysResponses> = async () => notImplemented();
