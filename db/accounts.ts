// Rows in, rows out for the accounts table. No HTTP here and no generated types.
import type { Db } from './knex.ts';

export interface AccountRow {
  id: string;
  username: string;
  email: string;
  email_verified: boolean;
  password_hash: string | null;
  google_sub: string | null;
  plan: string;
  plan_source: 'default' | 'subscription' | 'manual';
  token_version: number;
  created_at: Date;
  updated_at: Date;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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
  row: { username: string; email: string; password_hash: string | null; email_verified?: boolean; google_sub?: string | null },
): Promise<{ account: AccountRow } | { conflict: UniqueField }> {
  try {
    const [account] = await db<AccountRow>('accounts').insert({ ...row, email: row.email.toLowerCase() }).returning('*');
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
