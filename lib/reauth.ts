// Re-authentication: an operation that changes how an account signs in (password, email, Google
// link, deletion) asks for proof of the account's secret in the same request, so a stolen session
// token alone cannot take the account over. The proof is the password for an account that has
// one, else a Google ID token of the linked Google account issued within the last 10 minutes.
//
// Every attempt is counted against the account's login-failure limit (by its username and by its
// email: login accepts either, so both counters guard the one password) before the proof is
// checked, and given back when it holds, exactly as login does: re-authentication is no side door
// for guessing the password. Every failure gets one answer, whatever was wrong.
import { type AccountRow, findAccountById } from '../db/accounts.ts';
import type { Deps } from './deps.ts';
import { checkGoogleCredential } from './google.ts';
import { consume, limitKey, refund } from './limits.ts';
import { accountGone, problem } from './problems.ts';

/** How fresh a Google ID token must be to stand in for a password. */
export const GOOGLE_REAUTH_MAX_AGE_SECONDS = 600;

export interface ReauthProof {
  password?: string;
  google_credential?: string;
}

/** The login-failure counters of an account, as login keys them. */
export const loginFailureKeys = (account: Pick<AccountRow, 'username' | 'email'>): string[] => [
  limitKey('login-id', account.username),
  limitKey('login-id', account.email),
];

const failed = () =>
  problem('reauthentication_failed', {
    detail: 'Send the account password (or, for an account without one, a fresh Google credential).',
  });

/**
 * Checks the proof for the account with this id and returns its row, read after the counters were
 * counted. Throws 429 when the account's sign-in is locked, 403 reauthentication_failed for any
 * wrong, missing or stale proof, 401 when the account is gone.
 */
export async function reauthenticate(
  { config, db, hasher, google, log }: Pick<Deps, 'config' | 'db' | 'hasher' | 'google' | 'log'>,
  owner: Pick<AccountRow, 'id' | 'username' | 'email'>,
  proof: ReauthProof,
  clientIp: string,
): Promise<AccountRow> {
  const keys = [...loginFailureKeys(owner), limitKey('login-ip', clientIp)];
  await consume(db, [
    { key: keys[0]!, rule: config.limits.loginIdentifier },
    { key: keys[1]!, rule: config.limits.loginIdentifier },
    { key: keys[2]!, rule: config.limits.loginIp },
  ]);
  const account = await findAccountById(db, owner.id);
  if (!account) throw accountGone();

  let ok = false;
  if (account.password_hash !== null || proof.password !== undefined) {
    // Only the password proves an account that has one. A password sent for a Google-only account
    // is checked against the dummy hash, so the answer's timing tells nothing either.
    const { ok: matches } = await hasher.verify(account.password_hash, proof.password ?? '');
    ok = matches && proof.password !== undefined;
  } else if (proof.google_credential !== undefined && account.google_sub !== null) {
    const verdict = await checkGoogleCredential(google, log, proof.google_credential);
    const age = Math.floor(Date.now() / 1000) - ('identity' in verdict ? verdict.identity.issuedAt : Infinity);
    ok = 'identity' in verdict && verdict.identity.sub === account.google_sub && age <= GOOGLE_REAUTH_MAX_AGE_SECONDS;
  }
  if (!ok) throw failed();
  await refund(db, keys);
  return account;
}
