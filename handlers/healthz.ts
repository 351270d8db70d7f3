import type { HealthzData, HealthzResponses } from '../generated/types.gen.ts';
import type { Operation } from '../http/operation.ts';

export const healthz: Operation<HealthzData, HealthzResponses> = async () => ({ status: 200, body: { status: 'ok' } });
