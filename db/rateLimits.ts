// Fixed-window counters kept in the database, so a limit holds across every instance. One
// atomic upsert counts a hit and starts a new window when the old one has passed.
import { type Db, deleteInBatches } from './knex.ts';

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

/**
 * The live counters among these keys (those whose window, of the given length, has not passed),
 * without writing anything: absent keys have counted nothing yet.
 */
export async function readCounters(
  db: Db,
  counters: { key: string; windowSeconds: number }[],
): Promise<Map<string, Hit>> {
  const live = new Map<string, Hit>();
  if (counters.length === 0) return live;
  const { rows } = await db.raw(
    `select v.key, r.count, ceil(extract(epoch from (r.window_start + make_interval(secs => v.win) - now())))::int as reset_in
     from (values ${counters.map(() => '(?::text, ?::int)').join(', ')}) as v (key, win)
     join rate_limits r on r.key = v.key
     where r.window_start > now() - make_interval(secs => v.win)`,
    counters.flatMap((c) => [c.key, c.windowSeconds]),
  );
  for (const row of rows as { key: string; count: number; reset_in: number }[]) live.set(row.key, toHit(row));
  return live;
}

/** Gives back hits that turned out not to count (a login that succeeded). */
export async function refundCounter(db: Db, key: string, by = 1): Promise<void> {
  await db('rate_limits')
    .where({ key })
    .update({ count: db.raw('greatest(count - ?, 0)', [by]) });
}

/**
 * Deletes counters whose window started more than `olderThanSeconds` ago, `batch` rows per
 * statement (rate_limits_window_start keeps each one an index range scan), so a sweep after a
 * flood of identifiers never holds a long lock or one huge transaction. Returns how many.
 */
export const deleteExpiredCounters = (db: Db, olderThanSeconds: number, batch = 5000): Promise<number> =>
  deleteInBatches(
    db,
    `delete from rate_limits where key in (
       select key from rate_limits where window_start < now() - make_interval(secs => ?) limit ?)
     returning key`,
    [olderThanSeconds],
    batch,
  );

/** Forgets these counters (the attempts of an account that no longer exists). */
export async function deleteCounters(db: Db, keys: string[]): Promise<void> {
  await db('rate_limits').whereIn('key', keys).delete();
}
