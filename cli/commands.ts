// What each rst command does. Each one makes at most one API call through @rst-auth/sdk and
// prints either a summary (stdout), notes for the person at the terminal (stderr), or, with
// --json, the API's JSON alone.
import {
  createApiKey,
  forgotPassword,
  getAccount,
  listApiKeys,
  listSessions,
  login,
  logout,
  register,
  resendVerification,
  resetPassword,
  revokeApiKey,
  revokeSession,
  unlinkGoogle,
  verifyEmail,
} from '@rst-auth/sdk';
import { call, type GlobalOptions, openSession, requireCredential } from './api.ts';
import { readProfile, writeProfile } from './profile.ts';
import { accountSummary, clean, keysTable, note, out, printJson, sessionsTable } from './render.ts';
import { type PasswordSource, readOneTimeSecret, readPassword, warnSecretInArgv } from './secrets.ts';
import { CliError, usageError } from './exit.ts';

type With<T> = GlobalOptions & T;

export async function registerCommand(o: With<PasswordSource & { username: string; email: string }>): Promise<void> {
  // Resolve the server first, so a bad --url is reported before anyone types a password.
  const s = openSession(o);
  const password = await readPassword(o, 'Password', true);
  const account = await call(
    s,
    register({ client: s.client, body: { username: o.username, email: o.email, password } }),
  );
  if (s.json) return printJson(account);
  out(`Registered ${account.username} <${account.email}> on ${s.url}.`);
  note(
    `A six-digit code was emailed to ${account.email}; confirm it with:\n  rst verify-email --email ${account.email}`,
  );
}

/** A one-time secret from its option (with a warning), else from a hidden prompt or stdin. */
async function oneTimeSecret(given: string | undefined, option: string, what: string): Promise<string> {
  if (given === undefined) return readOneTimeSecret(what);
  warnSecretInArgv(option);
  return given;
}

export async function verifyEmailCommand(o: With<{ email: string; code?: string }>): Promise<void> {
  const s = openSession(o);
  const code = await oneTimeSecret(o.code, '--code', 'Verification code');
  const verified = await call(s, verifyEmail({ client: s.client, body: { email: o.email, code } }));
  if (s.json) return printJson(verified);
  out(`Email ${verified.email} verified. Sign in with: rst login --username ${verified.email}`);
}

export async function resendVerificationCommand(o: With<{ email: string }>): Promise<void> {
  const s = openSession(o);
  const answer = await call(s, resendVerification({ client: s.client, body: { email: o.email } }));
  if (s.json) return printJson(answer);
  out(answer.message);
}

export async function loginCommand(o: With<PasswordSource & { username: string }>): Promise<void> {
  const s = openSession(o);
  const password = await readPassword(o, 'Password');
  const session = await call(s, login({ client: s.client, body: { username: o.username, password } }));
  writeProfile({ url: s.url, token: session.access_token, refreshToken: session.refresh_token }, s.profileFile);
  if (s.json) printJson(session);
  else
    out(
      `Signed in to ${s.url} as ${o.username}. The session renews itself while in use: it ends after 30 days unused, 90 days at most, or at rst logout.`,
    );
  note(`Session saved in ${s.profileFile}.`);
  const shadowing = ['RST_TOKEN', 'RST_API_KEY'].filter((name) => process.env[name]);
  if (shadowing.length)
    note(
      `note: ${shadowing.join(' and ')} ${shadowing.length > 1 ? 'are' : 'is'} set and take${shadowing.length > 1 ? '' : 's'} precedence over the saved session.`,
    );
}

export async function logoutCommand(o: With<{ all?: boolean; others?: boolean }>): Promise<void> {
  if (o.all && o.others) throw usageError('--all and --others exclude each other');
  const scope = o.all ? 'all' : o.others ? 'others' : 'current';
  const s = openSession(o);
  if (!s.credential) {
    if (!s.json) out(`Not signed in to ${s.url}: there is no stored session.`);
    return;
  }
  const stored = s.credential.source === 'profile';
  try {
    await call(s, logout({ client: s.client, body: { scope } }));
  } catch (err) {
    // A stored session the server no longer accepts has ended already: forgetting it is all
    // that is left to do. Anything else (unreachable, an API key) keeps the profile for a retry.
    if (!(stored && err instanceof CliError && /\(unauthorized\)/.test(err.message))) throw err;
  }
  // The profile is re-read: a refresh during the call may have replaced its tokens.
  if (stored && scope !== 'others') writeProfile({ url: readProfile(s.profileFile).url ?? s.url }, s.profileFile);
  if (s.json) return;
  const what = { current: 'This session has', others: 'Every other session has', all: 'Every session has' }[scope];
  out(`${what} ended on ${s.url}; its tokens are refused from now on.`);
  if (stored && scope !== 'others') note(`The stored session in ${s.profileFile} is forgotten.`);
  const shadowing = ['RST_TOKEN', 'RST_API_KEY'].filter((name) => process.env[name]);
  if (shadowing.length) note(`note: ${shadowing.join(' and ')} still set in the environment.`);
}

export async function sessionsListCommand(o: GlobalOptions): Promise<void> {
  const s = openSession(o);
  requireCredential(s);
  const list = await call(s, listSessions({ client: s.client }));
  if (s.json) return printJson(list);
  out(sessionsTable(list.items));
}

export async function sessionsRevokeCommand(id: string, o: GlobalOptions): Promise<void> {
  const s = openSession(o);
  requireCredential(s);
  await call(s, revokeSession({ client: s.client, path: { session_id: id } }));
  // 204: the API has no JSON to print.
  if (!s.json) out(`Ended session ${id}; its tokens are refused from now on.`);
}

export async function whoamiCommand(o: GlobalOptions): Promise<void> {
  const s = openSession(o);
  requireCredential(s);
  const account = await call(s, getAccount({ client: s.client }));
  if (s.json) return printJson(account);
  out(accountSummary(account));
}

export async function keysCreateCommand(
  name: string,
  o: With<{ scope?: string[]; expiresInDays?: number }>,
): Promise<void> {
  const s = openSession(o);
  requireCredential(s);
  const body: { name: string; scopes?: string[]; expires_in_days?: number } = { name };
  if (o.scope) body.scopes = o.scope;
  if (o.expiresInDays !== undefined) body.expires_in_days = o.expiresInDays;
  const key = await call(s, createApiKey({ client: s.client, body }));
  if (s.json) return printJson(key);
  // The raw key alone on stdout, so `rst keys create ci > key.txt` or `$(rst keys create ci)` holds
  // exactly the key; everything said about it goes to stderr.
  out(key.raw_key);
  const facts = [`id ${key.id}`, `prefix ${key.prefix}`];
  if (key.scopes.length > 0) facts.push(`scopes ${key.scopes.join(' ')}`);
  facts.push(key.expires_at ? `expires ${key.expires_at}` : 'never expires');
  note(`Created API key "${clean(key.name)}" (${facts.join(', ')}). It is shown only this once: store it now.`);
}

export async function keysListCommand(o: GlobalOptions): Promise<void> {
  const s = openSession(o);
  requireCredential(s);
  const list = await call(s, listApiKeys({ client: s.client }));
  if (s.json) return printJson(list);
  out(keysTable(list.items));
}

export async function keysRevokeCommand(id: string, o: GlobalOptions): Promise<void> {
  const s = openSession(o);
  requireCredential(s);
  await call(s, revokeApiKey({ client: s.client, path: { key_id: id } }));
  // 204: the API has no JSON to print.
  if (!s.json) out(`Revoked API key ${id}; it stops working at once.`);
}

export async function googleUnlinkCommand(o: GlobalOptions): Promise<void> {
  const s = openSession(o);
  requireCredential(s);
  const account = await call(s, unlinkGoogle({ client: s.client }));
  if (s.json) return printJson(account);
  out(`Google unlinked from ${account.username}.\n${accountSummary(account)}`);
}

export async function forgotPasswordCommand(o: With<{ email: string }>): Promise<void> {
  const s = openSession(o);
  const answer = await call(s, forgotPassword({ client: s.client, body: { email: o.email } }));
  if (s.json) return printJson(answer);
  out(answer.message);
  note('The email holds a recovery token; set a new password with (it asks for the token):\n  rst reset-password');
}

export async function resetPasswordCommand(o: With<PasswordSource & { token?: string }>): Promise<void> {
  const s = openSession(o);
  // The token first: piped, it is stdin's first line, and a password from --password-stdin the rest.
  const token = await oneTimeSecret(o.token, '--token', 'Recovery token');
  const password = await readPassword(o, 'New password', true);
  await call(s, resetPassword({ client: s.client, body: { token, new_password: password } }));
  // 204: the API has no JSON to print.
  if (!s.json) out('Password changed. Every earlier session is signed out; sign in again with: rst login');
}
