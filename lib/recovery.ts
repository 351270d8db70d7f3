// Password recovery tokens: high-entropy tokens (lib/tokens.ts), valid 30 minutes, single use,
// stored only as a keyed hash.
import { findAccountByEmail, type AccountRow } from '../db/accounts.ts';
import type { Db } from '../db/knex.ts';
import { enqueueMail } from '../db/outbox.ts';
import { insertRecoveryToken } from '../db/recoveryTokens.ts';
import { hashToken, newToken } from './tokens.ts';

export const RECOVERY_TTL_SECONDS = 30 * 60;
export const hashRecoveryToken = (key: Buffer, token: string): string => hashToken(key, 'recovery', token);

/** Mints a token and queues its email, inside the caller's transaction. */
export async function issueRecoveryToken(
  trx: Db,
  codeKey: Buffer,
  account: Pick<AccountRow, 'id' | 'email' | 'username'>,
): Promise<void> {
  const token = newToken();
  await insertRecoveryToken(trx, account.id, hashRecoveryToken(codeKey, token), RECOVERY_TTL_SECONDS);
  await enqueueMail(trx, {
    kind: 'reset_password',
    recipient: account.email,
    payload: { username: account.username },
    secret: token,
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
