// Verification codes at rest: one live code per account, as an HMAC, with its try counter.
import type { Db } from './knex.ts';

export const MAX_CODE_ATTEMPTS = 5;

/**
 * The account's one live code: any earlier code is replaced and its tries start again. `newEmail`
 * is the address an email change proves; null (registration, resend) proves the account's own.
 */
export async function replaceVerificationCode(
  db: Db,
  accountId: string,
  codeHash: string,
  ttlSeconds: number,
  newEmail: string | null = null,
): Promise<void> {
  await db.raw(
    `insert into verification_codes (account_id, code_hash, attempts, expires_at, created_at, new_email)
     values (?, ?, 0, now() + make_interval(secs => ?), now(), ?)
     on conflict (account_id) do update set code_hash = excluded.code_hash, attempts = 0,
       expires_at = excluded.expires_at, created_at = excluded.created_at, new_email = excluded.new_email`,
    [accountId, codeHash, ttlSeconds, newEmail],
  );
}

/**
 * Spends one try on the live code of the account with this email and returns its hash, or
 * nothing when there is no live code (none, expired, or out of tries). The try is counted in
 * the same statement that reads the code, so concurrent guesses cannot share a try.
 */
export async function spendCodeAttempt(
  db: Db,
  email: string,
): Promise<{ account_id: string; code_hash: string } | undefined> {
  const { rows } = await db.raw(
    `update verification_codes v set attempts = v.attempts + 1
     from accounts a
     where a.id = v.account_id and a.email = ? and v.new_email is null
       and v.expires_at > now() and v.attempts < ?
     returning v.account_id, v.code_hash`,
    [email, MAX_CODE_ATTEMPTS],
  );
  return rows[0];
}

/** The address a pending email change of this account would prove, live or not. */
export async function findPendingEmail(db: Db, accountId: string): Promise<string | undefined> {
  const row = await db('verification_codes')
    .where({ account_id: accountId })
    .whereNotNull('new_email')
    .first('new_email');
  return row?.new_email as string | undefined;
}

/** spendCodeAttempt for the pending email change of this account. */
export async function spendEmailChangeAttempt(
  db: Db,
  accountId: string,
): Promise<{ code_hash: string; new_email: string } | undefined> {
  const { rows } = await db.raw(
    `update verification_codes set attempts = attempts + 1
     where account_id = ? and new_email is not null and expires_at > now() and attempts < ?
     returning code_hash, new_email`,
    [accountId, MAX_CODE_ATTEMPTS],
  );
  return rows[0];
}

/** Uses the code up; true for exactly one of several concurrent callers. */
export async function consumeCode(db: Db, accountId: string, codeHash: string): Promise<boolean> {
  // RETURNING rather than delete()'s count: knex-pglite answers delete() with its raw result
  // object, not a number, so a count check would fail on PGlite alone.
  const deleted = await db('verification_codes')
    .where({ account_id: accountId, code_hash: codeHash })
    .delete()
    .returning('account_id');
  return deleted.length === 1;
}
