// Email verification codes: six digits from a CSPRNG, valid 10 minutes, stored only as an HMAC
// bound to the account, so a leaked table yields neither codes nor a lookup by code.
import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import { findAccountByEmail, type AccountRow } from '../db/accounts.ts';
import type { Db } from '../db/knex.ts';
import { enqueueMail } from '../db/outbox.ts';
import { replaceVerificationCode } from '../db/verificationCodes.ts';

export const CODE_TTL_SECONDS = 600;

export const hashCode = (key: Buffer, accountId: string, code: string): string =>
  createHmac('sha256', key).update(`verify:${accountId}:${code}`).digest('base64url');

/** An email change's code is bound to the address it proves too: a code mailed to one address can
 * never confirm another. */
export const hashEmailChangeCode = (key: Buffer, accountId: string, newEmail: string, code: string): string =>
  createHmac('sha256', key).update(`email-change:${accountId}:${newEmail}:${code}`).digest('base64url');

/** Whether a code's hash equals the stored one, compared in constant time. */
export function sameCodeHash(stored: string, computed: string): boolean {
  const a = Buffer.from(stored);
  const b = Buffer.from(computed);
  return a.length === b.length && timingSafeEqual(a, b);
}

// randomInt draws from the CSPRNG without modulo bias.
const newCode = (): string => String(randomInt(0, 1_000_000)).padStart(6, '0');

/** Replaces any earlier code of the account and queues the email, inside the caller's transaction. */
export async function issueVerificationCode(
  trx: Db,
  codeKey: Buffer,
  account: Pick<AccountRow, 'id' | 'email' | 'username'>,
): Promise<void> {
  const code = newCode();
  await replaceVerificationCode(trx, account.id, hashCode(codeKey, account.id, code), CODE_TTL_SECONDS);
  await enqueueMail(trx, {
    kind: 'verify_email',
    recipient: account.email,
    payload: { username: account.username },
    secret: code,
  });
}

/**
 * Starts an email change, inside the caller's transaction: a code for the new address replaces any
 * earlier code of the account (and so any earlier pending change), and its email goes to the new
 * address. The payload names the account, so deleting the account finds the mail.
 */
export async function issueEmailChangeCode(
  trx: Db,
  codeKey: Buffer,
  account: Pick<AccountRow, 'id' | 'username'>,
  newEmail: string,
): Promise<void> {
  const code = newCode();
  const codeHash = hashEmailChangeCode(codeKey, account.id, newEmail, code);
  await replaceVerificationCode(trx, account.id, codeHash, CODE_TTL_SECONDS, newEmail);
  await enqueueMail(trx, {
    kind: 'email_change_code',
    recipient: newEmail,
    payload: { username: account.username, account_id: account.id },
    secret: code,
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
