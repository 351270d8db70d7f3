// Rows in, rows out for sessions and their spent refresh tokens. Refresh tokens reach this file
// only as keyed hashes (lib/tokens.ts). A session is active while revoked_at is null and
// expires_at is in the future; expires_at moves with each refresh but never past
// absolute_expires_at.
import type { Db } from './knex.ts';
import { withRetry } from './retry.ts';

export type SessionMethod = 'password' | 'google';

export interface SessionRow {
  id: string;
  account_id: string;
  method: SessionMethod;
  created_at: Date;
  last_used_at: Date;
  expires_at: Date;
  user_agent: string | null;
  ip: string | null;
}

/** How stale last_used_at may get before a use writes it again: 30 s, so that with the credential
 * cache marking a use every 30 s (lib/credentials.ts) it stays within the minute API.md promises. */
export const SESSION_TOUCH_AFTER = `interval '30 seconds'`;
const ACTIVE = `revoked_at is null and expires_at > now()`;

export interface Lifetimes {
  /** A session ends this long after its last refresh… */
  idleSeconds: number;
  /** …and this long after it opened, whatever the refreshes. */
  absoluteSeconds: number;
  /** Opening one more session than this ends the account's least recently refreshed ones. */
  maxActive: number;
}

/**
 * Opens a session with its first refresh token. An account that already holds `maxActive` active
 * sessions loses the ones refreshed longest ago, so a script that logs in in a loop cannot grow
 * the table (or the session list) without bound.
 */
export async function openSession(
  db: Db,
  session: {
    accountId: string;
    method: SessionMethod;
    refreshHash: string;
    userAgent: string | null;
    ip: string | null;
  },
  lifetimes: Lifetimes,
): Promise<string> {
  return withRetry(db, async (trx) => {
    const { rows } = await trx.raw(
      `insert into sessions (account_id, method, refresh_hash, user_agent, ip, expires_at, absolute_expires_at)
       values (?, ?, ?, ?, ?, now() + make_interval(secs => ?), now() + make_interval(secs => ?))
       returning id`,
      [
        session.accountId,
        session.method,
        session.refreshHash,
        session.userAgent,
        session.ip,
        Math.min(lifetimes.idleSeconds, lifetimes.absoluteSeconds),
        lifetimes.absoluteSeconds,
      ],
    );
    await trx.raw(
      `update sessions set revoked_at = now()
       where account_id = ? and ${ACTIVE} and id not in (
         select id from sessions where account_id = ? and ${ACTIVE} order by expires_at desc, id desc limit ?)`,
      [session.accountId, session.accountId, lifetimes.maxActive],
    );
    return rows[0].id as string;
  });
}

export type Rotation = { sessionId: string; accountId: string } | 'spent' | undefined;

/**
 * Spends a refresh token and installs its successor, in one transaction. The conditional UPDATE
 * takes the session's row lock: of two concurrent rotations with one token the second waits,
 * re-checks `refresh_hash = old` after the first commits, matches nothing, and so exactly one
 * wins. A token that matches no active session is looked up among the spent ones: found, it was
 * used before (by the client or by a thief, which one cannot be told), and the whole session ends
 * ('spent'); not found, it is unknown, or its session has ended or expired (undefined).
 */
export async function rotateRefreshToken(
  db: Db,
  oldHash: string,
  newHash: string,
  idleSeconds: number,
): Promise<Rotation> {
  return withRetry(db, async (trx) => {
    const { rows } = await trx.raw(
      `update sessions set refresh_hash = ?, last_used_at = now(),
         expires_at = least(now() + make_interval(secs => ?), absolute_expires_at)
       where refresh_hash = ? and ${ACTIVE}
       returning id, account_id`,
      [newHash, idleSeconds, oldHash],
    );
    const rotated = rows[0] as { id: string; account_id: string } | undefined;
    if (rotated) {
      await trx('spent_refresh_tokens').insert({ token_hash: oldHash, session_id: rotated.id });
      return { sessionId: rotated.id, accountId: rotated.account_id };
    }
    const spent = await trx('spent_refresh_tokens').where({ token_hash: oldHash }).first('session_id');
    if (!spent) return undefined;
    await trx('sessions').where({ id: spent.session_id }).whereNull('revoked_at').update({ revoked_at: trx.fn.now() });
    return 'spent';
  });
}

/**
 * Ends the account's active sessions: all of them, all but `except` (the caller's own), or only
 * those opened with `method`. Their JWTs and refresh tokens stop working on the next request.
 * Returns how many ended.
 */
export async function endSessions(
  db: Db,
  accountId: string,
  only: { except?: string; method?: SessionMethod } = {},
): Promise<number> {
  const query = db('sessions').where({ account_id: accountId }).whereNull('revoked_at');
  if (only.except) query.whereNot({ id: only.except });
  if (only.method) query.where({ method: only.method });
  return query.update({ revoked_at: db.fn.now() });
}

/** Ends one active session of this account in one conditional UPDATE: false for an unknown id,
 * an ended or expired session, and another account's alike. */
export async function endSession(db: Db, accountId: string, sessionId: string): Promise<boolean> {
  const rows = await db('sessions')
    .where({ id: sessionId, account_id: accountId })
    .whereRaw(ACTIVE)
    .update({ revoked_at: db.fn.now() })
    .returning('id');
  return rows.length === 1;
}

/** Active sessions of one account, newest first (served by sessions_active_by_account). */
export async function listActiveSessions(db: Db, accountId: string): Promise<SessionRow[]> {
  return db<SessionRow>('sessions')
    .where({ account_id: accountId })
    .whereRaw(ACTIVE)
    .orderBy([
      { column: 'created_at', order: 'desc' },
      { column: 'id', order: 'desc' },
    ])
    .select('id', 'account_id', 'method', 'created_at', 'last_used_at', 'expires_at', 'user_agent', 'ip');
}

/** Records uses of these sessions in one statement; sessions whose use is already recorded within
 * the minute (by this or another instance) and ended ones are left alone. */
export async function touchSessions(db: Db, sessionIds: string[]): Promise<void> {
  await db('sessions')
    .whereIn('id', sessionIds)
    .whereNull('revoked_at')
    .whereRaw(`last_used_at < now() - ${SESSION_TOUCH_AFTER}`)
    .update({ last_used_at: db.fn.now() });
}

/** Forgets sessions (and, by cascade, their spent tokens) that ended or expired more than
 * `afterSeconds` ago: their tokens are then unknown, which is refused just the same. */
export async function deleteEndedSessions(db: Db, afterSeconds: number): Promise<number> {
  const deleted = await db('sessions')
    .whereRaw(`least(revoked_at, expires_at) < now() - make_interval(secs => ?)`, [afterSeconds])
    .delete()
    .returning('id');
  return deleted.length;
}
