// How the database layer tells "the database cannot be reached" from "the database refused this
// query": only the first is answered with 503 while the service stays up.

/** Connection-level failures of pg, the pool or PGlite: the service stays up and answers 503. */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: string; name?: string; message?: string };
  if (!e) return false;
  if (e.name === 'KnexTimeoutError') return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH'].includes(e.code ?? ''))
    return true;
  // 57P01 admin shutdown, 57P03 cannot connect now, 08xxx connection exceptions, 53300 too many connections
  if (/^(08...|57P0[1-3]|53300)$/.test(e.code ?? '')) return true;
  // pg's own wording for a connection that died, never came up (connectionTimeoutMillis: "timeout
  // expired"), or stopped answering (query_timeout: "Query read timeout").
  return /Connection terminated|connection timeout|Client has encountered a connection error|timeout exceeded when trying to connect|timeout expired|Query read timeout|Client was closed and is not queryable/i.test(
    e.message ?? '',
  );
}
