// Password recovery tokens: 32 bytes from the CSPRNG (256 bits), base64url, valid 30 minutes,
// single use, stored only as an HMAC under the service's code key. Guessing is hopeless at that
// entropy, so a lookup by hash needs no constant-time compare: the hash an attacker would have
// to match is unknown to them, and the raw token is never stored.
import { createHmac, randomBytes } from 'node:crypto';
import { findAccountByEmail, type AccountRow } from '../db/accounts.ts';
import type { Db } from '../db/knex.ts';
import { enqueueMail } from '../db/outbox.ts';
import { insertRecoveryToken } from '../db/recoveryTokens.ts';

export const RECOVERY_TTL_SECONDS = 30 * 60;
const TOKEN_BYTES = 32;

export const hashRecoveryToken = (key: Buffer, token: string): string =>
  createHmac('sha256', key).update(`recovery:${token}`).digest('base64url');

/** Mints a token and queues its email, inside the caller's transaction. */
export async function issueRecoveryToken(
  trx: Db,
  codeKey: Buffer,
  account: Pick<AccountRow, 'id' | 'email' | 'username'>,
): Promise<void> {
  const token = randomBytes(TOKEN_BYTES).toString('base64url');
  await insertRecoveryToken(trx, account.id, hashRecoveryToken(codeKey, token), RECOVERY_TTL_SECONDS);
  await enqueueMail(trx, {
    kind: 'reset_password',
    recipient: account.email,
    payload: { username: account.username },
    secret: token,
    expiresInSeconds: RECOVERY_TTL_SECONDS,
  });
}

/**
 * The worker's half of forgot-password: any account with this email gets a recovery email,
 * verified or not, with or without a password (a Google-only account may add one this way);
 * a request for an unknown email is dropped without a trace.
 */
export async function runRecoveryRequest(trx: Db, codeKey: Buffer, email: string): Promise<void> {
  const account = await findAccountByEmail(trx, email);
  if (account) await issueRecoveryToken(trx, codeKey, account);
}
