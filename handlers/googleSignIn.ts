import { randomBytes } from 'node:crypto';
import type { GoogleSignInData, GoogleSignInResponses } from '../generated/types.gen.ts';
import {
  type AccountRow,
  findAccountByEmail,
  findAccountByGoogleSub,
  insertAccount,
  linkGoogleByEmail,
} from '../db/accounts.ts';
import type { Db } from '../db/knex.ts';
import { checkGoogleCredential, type GoogleIdentity } from '../lib/google.ts';
import { consume, limitKey } from '../lib/limits.ts';
import type { Logger } from '../lib/logger.ts';
import { googleNotConfigured, invalidGoogleCredential as invalidCredential } from '../lib/problems.ts';
import { startSession } from '../lib/sessions.ts';
import type { Operation } from '../http/operation.ts';

export const googleSignIn: Operation<GoogleSignInData, GoogleSignInResponses> = async (
  c,
  ctx,
  { config, db, google, jwt, codeKey, log },
) => {
  if (!google) throw googleNotConfigured();
  // Counted before the token is looked at, so a flood of forged tokens is throttled too.
  await consume(db, [{ key: limitKey('google-ip', ctx.ip), rule: config.limits.googleIp }]);

  const { credential, nonce } = c.request.requestBody;
  const verdict = await checkGoogleCredential(google, log, credential, nonce);
  if ('refused' in verdict) {
    log.info({ reason: verdict.refused }, 'Google credential refused');
    throw invalidCredential();
  }

  const { account, created } = await accountFor(db, log, verdict.identity);
  const tokens = await startSession(db, jwt, codeKey, {
    accountId: account.id,
    method: 'google',
    userAgent: ctx.get('user-agent'),
    ip: ctx.ip,
  });
  return { status: 200, headers: { 'Cache-Control': 'no-store' }, body: { ...tokens, account_created: created } };
};

/**
 * The account for a verified Google identity: the one linked to the subject, else the one with
 * the email (linked now), else a new one. Each step can lose a race to a concurrent request with
 * the same identity; the unique indexes on google_sub and email turn that into a conflict, and the
 * next round finds what the winner wrote. So concurrent first sign-ins make one account.
 */
async function accountFor(
  db: Db,
  log: Logger,
  identity: GoogleIdentity,
): Promise<{ account: AccountRow; created: boolean }> {
  for (let round = 0; round < 5; round++) {
    const linked = await findAccountByGoogleSub(db, identity.sub);
    if (linked) return { account: linked, created: false };

    const sameEmail = await findAccountByEmail(db, identity.email);
    if (sameEmail) {
      if (sameEmail.google_sub === identity.sub) return { account: sameEmail, created: false };
      if (sameEmail.google_sub !== null) {
        // Another Google account had this email when it was linked (a recycled Workspace address,
        // say). Google's subject, not the email, is the identity: never hand this account over.
        log.warn({ accountId: sameEmail.id }, 'Google sign-in refused: email linked to another Google subject');
        throw invalidCredential('This email belongs to an account linked to a different Google account.');
      }
      const result = await linkGoogleByEmail(db, sameEmail.id, identity.email, identity.sub);
      if (result && 'account' in result) {
        if (result.takeover)
          log.info(
            { accountId: result.account.id },
            'Google link removed an unverified password and revoked its sessions',
          );
        return { account: result.account, created: false };
      }
      continue;
    }

    const account = await createGoogleAccount(db, identity);
    if (account) return { account, created: true };
  }
  throw new Error('Google sign-in: the account did not settle after repeated conflicts');
}

/** A new verified, password-less account; undefined when another request took the email or the
 * subject first. A taken username only means trying another. */
async function createGoogleAccount(db: Db, identity: GoogleIdentity): Promise<AccountRow | undefined> {
  const base = usernameBase(identity.email);
  for (let attempt = 0; attempt < 10; attempt++) {
    const username = attempt === 0 ? base : withSuffix(base, attempt < 5 ? 4 : 8);
    const result = await insertAccount(db, {
      username,
      email: identity.email,
      password_hash: null,
      email_verified: true,
      google_sub: identity.sub,
    });
    if ('account' in result) return result.account;
    if (result.conflict !== 'username') return undefined;
  }
  throw new Error('Google sign-in: no free username after 10 tries');
}

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$/;
const SUFFIX_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

/** The email's local part as a valid username: accents folded to ASCII, anything else outside
 * `A-Za-z0-9_.-` turned into `_`, a leading separator dropped, at most 32 characters, at least 3. */
function usernameBase(email: string): string {
  const local = email.slice(0, email.lastIndexOf('@'));
  let name = local
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, '_')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 32);
  if (name.length < 3) name = `user${name ? `_${name}` : ''}`.slice(0, 32);
  return USERNAME.test(name) ? name : 'user';
}

/** A random suffix rather than a counter: concurrent sign-ups with the same local part do not
 * all collide on `name2`, `name3`, … in turn. */
function withSuffix(base: string, length: number): string {
  const bytes = randomBytes(length);
  const suffix = Array.from(bytes, (b) => SUFFIX_ALPHABET[b % SUFFIX_ALPHABET.length]).join('');
  return `${base.slice(0, 32 - length - 1)}_${suffix}`;
}
