// Email verification codes: six digits from a CSPRNG, valid 10 minutes, stored only as an HMAC
// bound to the account, so a leaked table yields neither codes nor a lookup by code.
import { createHmac, randomInt } from 'node:crypto';
import { findAccountByEmail, type AccountRow } from '../db/accounts.ts';
import type { Db } from '../db/knex.ts';
import { dropUnsentMail, enqueueMail } from '../db/outbox.ts';
import { replaceVerificationCode } from '../db/verificationCodes.ts';

export const CODE_TTL_SECONDS = 600;

export const hashCode = (key: Buffer, accountId: string, code: string): string =>
  createHmac('sha256', key).update(`verify:${accountId}:${code}`).digest('base64url');

/** Replaces any earlier code of the account and queues the email, inside the caller's transaction. */
export async function issueVerificationCode(
  trx: Db,
  codeKey: Buffer,
  account: Pick<AccountRow, 'id' | 'email' | 'username'>,
): Promise<void> {
  // randomInt draws from the CSPRNG without modulo bias.
  const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
  await replaceVerificationCode(trx, account.id, hashCode(codeKey, account.id, code), CODE_TTL_SECONDS);
  // The earlier code is dead: a message still carrying it must not go out (nor keep it).
  await dropUnsentMail(trx, 'verify_email', account.email);
  await enqueueMail(trx, {
    kind: 'verify_email',
    recipient: account.email,
    payload: { username: account.username },
    secret: code,
    expiresInSeconds: CODE_TTL_SECONDS,
  });
}

/**
 * The worker's half of resend-verification: a fresh code goes only to an account that has this
 * email and has not verified it; any other request is dropped without a trace.
 */
export async function runVerificationRequest(trx: Db, codeKey: Buffer, email: string): Promise<void> {
  const account = await findAccountByEmail(trx, email);
  if (account && !account.email_verified) await issueVerificationCode(trx, codeKey, account);
}
