// Rows in, rows out for the accounts table. No HTTP here and no generated types.
import { type Db, deleteInBatches, type Lookup } from './knex.ts';
import { withRetry } from './retry.ts';
import { endSessions, SESSION_TOUCH_AFTER } from './sessions.ts';

export interface AccountRow {
  id: string;
  username: string;
  email: string;
  email_verified: boolean;
  password_hash: string | null;
  google_sub: string | null;
  plan: string;
  plan_source: 'default' | 'subscription' | 'manual';
  created_at: Date;
  updated_at: Date;
}

/**
 * What an authenticated request knows of its owner: the columns of the account view, with the
 * two secrets reduced to whether they are set. Read on every
 * authenticated request, so nothing more is fetched (or parsed) than the view needs.
 */
export interface OwnerRow {
  id: string;
  username: string;
  email: string;
  email_verified: boolean;
  plan: string;
  plan_source: AccountRow['plan_source'];
  created_at: Date;
  has_password: boolean;
  google_linked: boolean;
}

/** The select list of an OwnerRow, for the accounts table under `alias`. */
export const ownerColumns = (alias: string): string =>
  ['id', 'username', 'email', 'email_verified', 'plan', 'plan_source', 'created_at']
    .map((c) => `${alias}.${c}`)
    .join(', ') +
  `, ${alias}.password_hash is not null as has_password, ${alias}.google_sub is not null as google_linked`;

export function toOwnerRow(row: AccountRow): OwnerRow {
  const { password_hash, google_sub, updated_at: _updatedAt, ...owner } = row;
  return { ...owner, has_password: password_hash !== null, google_linked: google_sub !== null };
}

/** A UUID in its one textual form (RFC 9562: 8-4-4-4-12 hex digits), either case: the request
 * formats (http/formats.ts) accept exactly this, so no other spelling PostgreSQL would read
 * (braces, no hyphens, `urn:uuid:`) reaches a query. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function findAccountById(db: Db, id: string): Promise<AccountRow | undefined> {
  if (!UUID.test(id)) return undefined;
  return db<AccountRow>('accounts').where({ id }).first();
}

/** Login accepts a username or an email, in any case. */
export async function findAccountByLogin(db: Db, login: string): Promise<AccountRow | undefined> {
  const value = login.toLowerCase();
  if (value.includes('@')) return db<AccountRow>('accounts').where({ email: value }).first();
  return db<AccountRow>('accounts').whereRaw('lower(username) = ?', [value]).first();
}

export async function findAccountByEmail(db: Db, email: string): Promise<AccountRow | undefined> {
  return db<AccountRow>('accounts').where({ email: email.toLowerCase() }).first();
}

export type UniqueField = 'username' | 'email' | 'google_sub';

/** Inserts an account; a unique violation comes back as the field it hit instead of an error. */
export async function insertAccount(
  db: Db,
  row: {
    username: string;
    email: string;
    password_hash: string | null;
    email_verified?: boolean;
    google_sub?: string | null;
  },
): Promise<{ account: AccountRow } | { conflict: UniqueField }> {
  try {
    const [account] = await db<AccountRow>('accounts')
      .insert({ ...row, email: row.email.toLowerCase() })
      .returning('*');
    return { account: account as AccountRow };
  } catch (err) {
    const conflict = uniqueConflict(err);
    if (conflict) return { conflict };
    throw err;
  }
}

export function uniqueConflict(err: unknown): UniqueField | undefined {
  const e = err as { code?: string; constraint?: string };
  if (e?.code !== '23505') return undefined;
  if (e.constraint === 'accounts_username_lower_key') return 'username';
  if (e.constraint === 'accounts_email_key') return 'email';
  if (e.constraint === 'accounts_google_sub_key') return 'google_sub';
  return undefined;
}

export async function updatePasswordHash(db: Db, id: string, passwordHash: string): Promise<void> {
  await db('accounts').where({ id }).update({ password_hash: passwordHash, updated_at: db.fn.now() });
}

export async function markEmailVerified(db: Db, id: string): Promise<void> {
  await db('accounts').where({ id }).update({ email_verified: true, updated_at: db.fn.now() });
}

export async function findAccountByGoogleSub(db: Db, sub: string): Promise<AccountRow | undefined> {
  return db<AccountRow>('accounts').where({ google_sub: sub }).first();
}

/**
 * Links a Google subject to the account that has its email, unless the account changed since it
 * was read (already linked, email changed, gone): then undefined, and the caller looks again.
 * An account whose email was never verified loses its password, its sessions and its API keys:
 * whoever set that password never proved they own the email, and Google just proved someone else
 * does (pre-account takeover). A verified account is linked only when Google is `authoritative`
 * for the address; else `{ refused: true }` and nothing changes.
 */
export async function linkGoogleByEmail(
  db: Db,
  id: string,
  email: string,
  sub: string,
  authoritative: boolean,
): Promise<{ account: AccountRow; takeover: boolean } | { conflict: UniqueField } | { refused: true } | undefined> {
  try {
    return await withRetry(db, async (trx) => {
      // The row lock makes the verified/unverified decision and the update one step: a
      // concurrent verify-email or reset cannot land between them.
      const current = await trx<AccountRow>('accounts').where({ id }).forUpdate().first();
      if (!current || current.google_sub !== null || current.email !== email.toLowerCase()) return undefined;
      if (current.email_verified && !authoritative) return { refused: true as const };
      const takeover = !current.email_verified;
      const changes: Record<string, unknown> = { google_sub: sub, email_verified: true, updated_at: trx.fn.now() };
      if (takeover) {
        changes.password_hash = null;
        await endSessions(trx, id);
        await trx('api_keys').where({ account_id: id }).whereNull('revoked_at').update({ revoked_at: trx.fn.now() });
      }
      const [account] = await trx<AccountRow>('accounts').where({ id }).update(changes).returning('*');
      return { account: account as AccountRow, takeover };
    });
  } catch (err) {
    const conflict = uniqueConflict(err);
    if (conflict) return { conflict };
    throw err;
  }
}

/** Clears the Google link only while the account still has a password to sign in with: one
 * conditional UPDATE, so two concurrent unlinks (or an unlink racing a password change) cannot
 * leave an account with no way in; and in the same transaction ends the sessions opened with
 * Google (API.md: unlinking revokes them). undefined when the condition did not hold. */
export async function unlinkGoogleSub(db: Db, id: string): Promise<AccountRow | undefined> {
  return withRetry(db, async (trx) => {
    const [row] = await trx<AccountRow>('accounts')
      .where({ id })
      .whereNotNull('google_sub')
      .whereNotNull('password_hash')
      .update({ google_sub: null, updated_at: trx.fn.now() })
      .returning('*');
    if (row) await endSessions(trx, id, { method: 'google' });
    return row as AccountRow | undefined;
  });
}

/** The account row, locked until the caller's transaction ends; undefined once it is deleted. */
export async function lockAccount(trx: Db, id: string): Promise<AccountRow | undefined> {
  return trx<AccountRow>('accounts').where({ id }).forUpdate().first();
}

/** Gives the account a new, verified email. A unique violation (another account has it) is
 * thrown: it aborts the caller's transaction, which is what must happen to it. */
export async function setVerifiedEmail(db: Db, id: string, email: string): Promise<AccountRow | undefined> {
  const [row] = await db<AccountRow>('accounts')
    .where({ id })
    .update({ email: email.toLowerCase(), email_verified: true, updated_at: db.fn.now() })
    .returning('*');
  return row as AccountRow | undefined;
}

/**
 * Links a Google subject to an account that has no link yet, whatever its email. The unique index
 * on google_sub decides a race for the subject ('in_use'); undefined when the account is gone or
 * got a link in the meantime.
 */
export async function linkGoogleSub(db: Db, id: string, sub: string): Promise<AccountRow | 'in_use' | undefined> {
  try {
    const [row] = await db<AccountRow>('accounts')
      .where({ id })
      .whereNull('google_sub')
      .update({ google_sub: sub, updated_at: db.fn.now() })
      .returning('*');
    return row as AccountRow | undefined;
  } catch (err) {
    if (uniqueConflict(err) === 'google_sub') return 'in_use';
    throw err;
  }
}

/** Deletes the account; its API keys, codes, recovery tokens and sessions go with it (foreign
 * keys ON DELETE CASCADE). True when this call deleted it. */
export async function deleteAccountRow(trx: Db, id: string): Promise<boolean> {
  // RETURNING, not delete()'s count: knex-pglite answers delete() with a raw result object.
  const deleted = await trx('accounts').where({ id }).delete().returning('id');
  return deleted.length === 1;
}

/**
 * The JWT half of every authenticated read, in one indexed query: the active session by primary
 * key, joined to its account. The account id is matched too, so a token can only name a session
 * of its own subject. `touchDue` is computed by the database clock, so every instance agrees on
 * it. A fixed statement through selectRows (see knex.ts): named, prepared once per connection.
 */
const SESSION_LOOKUP = {
  name: 'rst_session_lookup',
  text: `select ${ownerColumns('a')}, (s.last_used_at < now() - ${SESSION_TOUCH_AFTER}) as session_touch_due,
    extract(epoch from s.expires_at - now())::float8 as session_expires_in
  from sessions s join accounts a on a.id = s.account_id
  where s.id = $1 and s.account_id = $2 and s.revoked_at is null and s.expires_at > now()`,
};

/** The statement that finds a session's owner, for authenticated requests and introspection
 * alike; undefined for ids that cannot name a session. */
export function sessionLookup(sessionId: string, accountId: string): Lookup | undefined {
  return UUID.test(sessionId) && UUID.test(accountId)
    ? { statement: SESSION_LOOKUP, values: [sessionId, accountId] }
    : undefined;
}

/** The owner from a row of sessionLookup's statement, whether the session's use is due a write,
 * and the seconds until it expires by the database clock (for a cache's bound). */
export function foundSession(row: object): { account: OwnerRow; touchDue: boolean; expiresIn: number } {
  const {
    session_touch_due: touchDue,
    session_expires_in: expiresIn,
    ...account
  } = row as OwnerRow & { session_touch_due: boolean; session_expires_in: number };
  return { account, touchDue, expiresIn };
}

/**
 * Deletes accounts whose email is still unverified `ttlHours` after registration (registration
 * squatting: the username and email become free again), `batch` rows per statement so no sweep
 * holds many row locks at once. The age and verified conditions are repeated outside the
 * subquery so that an account verified while the sweep runs is re-checked and kept; rows another
 * transaction holds are skipped until the next sweep. Their keys, codes and tokens go with them
 * (ON DELETE CASCADE). Returns how many were deleted.
 */
export const deleteStaleUnverifiedAccounts = (db: Db, ttlHours: number, batch = 500): Promise<number> =>
  deleteInBatches(
    db,
    `delete from accounts where not email_verified and created_at < now() - make_interval(hours => ?)
       and id in (
         select id from accounts where not email_verified and created_at < now() - make_interval(hours => ?)
         limit ? for update skip locked)
     returning id`,
    [ttlHours, ttlHours],
    batch,
  );
