import type { HealthzData, HealthzResponses } from '../generated/types.gen.ts';
import type { Operation } from './types.ts';

export const healthz: Operation<HealthzData, HealthzResponses> = async () => ({ status: 200, body: { status: 'ok' } });
