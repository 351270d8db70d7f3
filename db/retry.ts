// Transactions that survive one deadlock or serialization failure. PostgreSQL aborts one of the
// transactions in a deadlock (40P01) or a serialization conflict (40001) and says the whole
// transaction may succeed if run again; once is enough to get past a passing collision, and a
// second failure is answered 503 (db/errors.ts) instead of holding the request in a loop.
import { classifyDatabaseError } from './errors.ts';
import type { Db } from './knex.ts';

/** Runs `work` in a transaction, and once more, from the start, after a deadlock or serialization failure. */
export async function withRetry<T>(
  db: Db,
  work: (trx: Db) => Promise<T>,
  log?: { warn(obj: object, msg: string): void },
): Promise<T> {
  try {
    return await db.transaction(work);
  } catch (err) {
    if (classifyDatabaseError(err) !== 'transient') throw err;
    log?.warn({ err }, 'transaction retried after a deadlock or serialization failure');
    // A short random pause, so the two transactions that collided do not meet again in step.
    await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
    return db.transaction(work);
  }
}
