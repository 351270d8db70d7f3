// What a database error means for the request that met it. Connection failures are tagged where
// they happen (db/pgClient.ts) whatever PostgreSQL's reason; a query that reached PostgreSQL and
// failed is judged by its SQLSTATE class (PostgreSQL manual, appendix A).

/** The database could not be reached or used: raised where a connection is obtained, or lost. */
export class DatabaseUnavailable extends Error {
  readonly where: 'connect' | 'connection lost';
  constructor(where: 'connect' | 'connection lost', cause: unknown) {
    super(`database ${where === 'connect' ? 'connection failed' : 'connection lost'}`, { cause });
    this.name = 'DatabaseUnavailable';
    this.where = where;
  }
}

/**
 * - `unavailable`: answered 503 with Retry-After; the service stays up and recovers by itself.
 * - `transient`: a deadlock or serialization failure; the whole transaction may simply be run again
 *   (withRetry, db/retry.ts), and is 503 when that did not cure it.
 * - `invalid_input`: the input is at fault, not the service: 400 validation_failed.
 * - undefined: a bug (500).
 */
export type DatabaseFailure = 'unavailable' | 'transient' | 'invalid_input';

const sqlState = (err: unknown): string => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : '';
};

export function classifyDatabaseError(err: unknown): DatabaseFailure | undefined {
  if (err instanceof DatabaseUnavailable) return 'unavailable';
  // knex's own pool timeout (PGlite's pool too: pg's is tagged at acquire already).
  if ((err as { name?: string } | null)?.name === 'KnexTimeoutError') return 'unavailable';
  const code = sqlState(err);
  if (code === '40001' || code === '40P01') return 'transient';
  // 22P02 invalid text representation (a uuid or number PostgreSQL cannot read), 22021/22P05
  // characters a text column cannot hold (U+0000 above all).
  if (code === '22P02' || code === '22021' || code === '22P05') return 'invalid_input';
  // 08 connection exception, 53 insufficient resources (disk full, out of memory, too many
  // connections), 58 system error (I/O), 57P0x shutdown / cannot connect now / database dropped /
  // idle-session timeout, 57014 statement timeout or cancel, 55P03 lock timeout, 25006 a write
  // met a read-only server (a failover that left this pool on a standby).
  if (/^(08|53|58)/.test(code) || /^57P0[1-5]$/.test(code)) return 'unavailable';
  if (code === '57014' || code === '55P03' || code === '25006') return 'unavailable';
  return undefined;
}
