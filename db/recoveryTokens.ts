// Recovery tokens at rest: only a keyed hash of each token, its expiry and when it was used.
import type { Db } from './knex.ts';
import { endSessions } from './sessions.ts';

export async function insertRecoveryToken(
  db: Db,
  accountId: string,
  tokenHash: string,
  ttlSeconds: number,
): Promise<void> {
  await db.raw(
    `insert into recovery_tokens (account_id, token_hash, expires_at) values (?, ?, now() + make_interval(secs => ?))`,
    [accountId, tokenHash, ttlSeconds],
  );
}

/** The account a live (unused, unexpired) token belongs to, without using the token up. */
export async function findLiveRecoveryToken(
  db: Db,
  tokenHash: string,
): Promise<{ account_id: string; username: string; email: string } | undefined> {
  return db('recovery_tokens as t')
    .join('accounts as a', 'a.id', 't.account_id')
    .where('t.token_hash', tokenHash)
    .whereNull('t.used_at')
    .andWhere('t.expires_at', '>', db.fn.now())
    .first('t.account_id', 'a.username', 'a.email');
}

/**
 * Redeems a token, in the caller's transaction: uses it up, sets the new password, marks the
 * email verified (the holder read the mail), uses up every other outstanding token of the
 * account, drops a pending verification code, and ends every session, so every JWT and refresh
 * token issued before is refused. Returns the account id, or undefined when the token is unknown,
 * expired or used.
 *
 * Locks are taken in one order, the account row first and its tokens after: two resets with two
 * different tokens of one account would otherwise each lock their own token and then wait for the
 * other's (this one for the account's other tokens, that one for the account row): a deadlock.
 * The second reset waits on the account row, then finds its token used by the first: exactly one
 * wins, also for two redemptions of one token.
 */
export async function redeemRecoveryToken(
  trx: Db,
  tokenHash: string,
  passwordHash: string,
): Promise<string | undefined> {
  const { rows: owners } = await trx.raw(
    `select a.id from accounts a join recovery_tokens t on t.account_id = a.id
     where t.token_hash = ? for no key update of a`,
    [tokenHash],
  );
  if (owners.length === 0) return undefined;
  const { rows } = await trx.raw(
    `update recovery_tokens set used_at = now()
     where token_hash = ? and used_at is null and expires_at > now()
     returning account_id`,
    [tokenHash],
  );
  const accountId = rows[0]?.account_id as string | undefined;
  if (!accountId) return undefined;
  await trx('accounts').where({ id: accountId }).update({
    password_hash: passwordHash,
    email_verified: true,
    updated_at: trx.fn.now(),
  });
  await endSessions(trx, accountId);
  await useUpRecoveryTokens(trx, accountId);
  await trx('verification_codes').where({ account_id: accountId }).delete();
  return accountId;
}

/** Every outstanding recovery token of the account stops working. */
export async function useUpRecoveryTokens(db: Db, accountId: string): Promise<void> {
  await db('recovery_tokens').where({ account_id: accountId }).whereNull('used_at').update({ used_at: db.fn.now() });
}
