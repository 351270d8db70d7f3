// Fixed-window counters kept in the database, so a limit holds across every instance. One
// atomic upsert counts a hit and starts a new window when the old one has passed.
import type { Db } from './knex.ts';

export interface Hit {
  count: number;
  /** seconds until the window closes */
  resetIn: number;
}

/**
 * The counting upsert over the rows of `source` (key, window_start, count), `window` being the SQL
 * of the window in seconds: shared by hitCounter and the one statement of an introspection
 * (db/serviceKeys.ts), so both count alike.
 */
export const countHits = (source: string, window: string): string =>
  `insert into rate_limits as r (key, window_start, count) ${source}
     on conflict (key) do update set
       count = case when r.window_start <= now() - make_interval(secs => ${window}) then excluded.count else r.count + excluded.count end,
       window_start = case when r.window_start <= now() - make_interval(secs => ${window}) then now() else r.window_start end
     returning r.count, ceil(extract(epoch from (r.window_start + make_interval(secs => ${window}) - now())))::int as reset_in`;

export async function hitCounter(db: Db, key: string, windowSeconds: number, by = 1): Promise<Hit> {
  const { rows } = await db.raw(countHits('values (?, now(), ?)', '?'), [
    key,
    by,
    windowSeconds,
    windowSeconds,
    windowSeconds,
  ]);
  return toHit(rows[0]);
}

export const toHit = (row: { count: unknown; reset_in: unknown }): Hit => ({
  count: Number(row.count),
  resetIn: Math.max(1, Number(row.reset_in)),
});

/** Gives back hits that turned out not to count (a login that succeeded). */
export async function refundCounter(db: Db, key: string, by = 1): Promise<void> {
  await db('rate_limits')
    .where({ key })
    .update({ count: db.raw('greatest(count - ?, 0)', [by]) });
}

export async function deleteExpiredCounters(db: Db, olderThanSeconds: number): Promise<void> {
  await db('rate_limits')
    .where('window_start', '<', db.raw('now() - make_interval(secs => ?)', [olderThanSeconds]))
    .delete();
}

/** Forgets these counters (the attempts of an account that no longer exists). */
export async function deleteCounters(db: Db, keys: string[]): Promise<void> {
  await db('rate_limits').whereIn('key', keys).delete();
}
