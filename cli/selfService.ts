// The self-service commands: change the password or the email, link Google, delete the account.
// Each one re-authenticates in the same request, as the API asks: the password (prompted, or
// --password-stdin), or for an account without one a fresh Google ID token (--google-token-file).
import { changeEmail, changePassword, deleteAccount, getAccount, linkGoogle, verifyEmailChange } from '@rst-auth/sdk';
import { call, type GlobalOptions, openSession, requireCredential } from './api.ts';
import { usageError } from './exit.ts';
import { readProfile, writeProfile } from './profile.ts';
import { accountSummary, note, out, printJson } from './render.ts';
import {
  type PasswordSource,
  promptLine,
  readFileOrStdin,
  readPassword,
  readPasswordPair,
  readSecret,
} from './secrets.ts';

type With<T> = GlobalOptions & T;
interface ReauthSource extends PasswordSource {
  googleTokenFile?: string;
}

/** The re-authentication of the body: a Google ID token when one is given, else the password. */
async function reauth(o: ReauthSource): Promise<{ password: string } | { google_credential: string }> {
  if (o.googleTokenFile !== undefined) {
    if (o.passwordStdin && o.googleTokenFile === '-')
      throw usageError('stdin cannot carry both a password and a token');
    return { google_credential: await readFileOrStdin(o.googleTokenFile, 'a Google ID token') };
  }
  return { password: await readPassword(o, 'Password') };
}

export async function passwordChangeCommand(o: With<PasswordSource>): Promise<void> {
  const s = openSession(o);
  requireCredential(s);
  let current: string;
  let next: string;
  if (o.passwordStdin) [current, next] = await readPasswordPair();
  else {
    current = await readPassword(o, 'Current password');
    next = await readPassword(o, 'New password', true);
  }
  await call(s, changePassword({ client: s.client, body: { current_password: current, new_password: next } }));
  // 204: the API has no JSON to print.
  if (!s.json) out('Password changed. Every other session is signed out; this one and your API keys stay.');
}

export async function emailChangeCommand(o: With<ReauthSource & { email: string }>): Promise<void> {
  const s = openSession(o);
  requireCredential(s);
  const answer = await call(s, changeEmail({ client: s.client, body: { new_email: o.email, ...(await reauth(o)) } }));
  if (s.json) return printJson(answer);
  out(`A six-digit code was emailed to ${o.email}; confirm it with:\n  rst email verify CODE`);
  note('The email changes only once the code is confirmed; it is valid for 10 minutes.');
}

export async function emailVerifyCommand(code: string | undefined, o: GlobalOptions): Promise<void> {
  const s = openSession(o);
  requireCredential(s);
  // A code given as an argument is in the shell's history; read it when it is not given.
  const given = code ?? (await readSecret('Code'));
  const account = await call(s, verifyEmailChange({ client: s.client, body: { code: given } }));
  if (s.json) return printJson(account);
  out(`Email changed to ${account.email} (verified). Every other session is signed out.`);
  note('A notice went to the old address.');
}

export async function googleLinkCommand(
  o: With<PasswordSource & { tokenFile: string; nonce?: string }>,
): Promise<void> {
  if (o.passwordStdin && o.tokenFile === '-') throw usageError('stdin cannot carry both a password and a token');
  const s = openSession(o);
  requireCredential(s);
  const credential = await readFileOrStdin(o.tokenFile, 'a Google ID token');
  const password = await readPassword(o, 'Password');
  const body = { credential, password, ...(o.nonce !== undefined ? { nonce: o.nonce } : {}) };
  const account = await call(s, linkGoogle({ client: s.client, body }));
  if (s.json) return printJson(account);
  out(`Google linked to ${account.username}.\n${accountSummary(account)}`);
}

export async function accountDeleteCommand(o: With<ReauthSource & { yes?: boolean; confirm?: string }>): Promise<void> {
  if (!!o.yes !== (o.confirm !== undefined)) throw usageError('--yes goes with --confirm USERNAME, and only with it');
  const s = openSession(o);
  requireCredential(s);
  // The username is asked for, not assumed: deleting is for good, and a wrong profile or token is
  // caught here, before anything is sent.
  const account = await call(s, getAccount({ client: s.client }));
  const typed = o.yes
    ? o.confirm
    : process.stdin.isTTY
      ? await promptLine(`This deletes ${account.username} <${account.email}> for good. Type the username to confirm: `)
      : undefined;
  if (typed === undefined) throw usageError('no terminal to confirm on: pass --yes --confirm USERNAME');
  if (typed !== account.username) throw usageError(`that is not ${account.username}: nothing was deleted`);
  if (!account.has_password && o.googleTokenFile === undefined)
    throw usageError('this account has no password: pass --google-token-file with a fresh Google ID token');
  await call(s, deleteAccount({ client: s.client, body: await reauth(o) }));
  if (s.credential?.source === 'profile') writeProfile({ url: readProfile(s.profileFile).url ?? s.url }, s.profileFile);
  if (s.json) return;
  out(`Account ${account.username} deleted, with its sessions and API keys. A goodbye mail went to ${account.email}.`);
}
