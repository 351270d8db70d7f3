import type { ReadyzData, ReadyzResponses } from '../generated/types.gen.ts';
import { ping } from '../db/knex.ts';
import { problem, serviceUnavailable } from '../lib/problems.ts';
import type { Operation } from '../http/operation.ts';

export const readyz: Operation<ReadyzData, ReadyzResponses> = async (_c, _ctx, { db, readiness }) => {
  const notReady = readiness.reason();
  if (notReady) throw problem('service_unavailable', { detail: notReady, headers: { 'Retry-After': '5' } });
  try {
    await ping(db);
  } catch {
    throw serviceUnavailable();
  }
  return { status: 200, body: { status: 'ok' } };
};
