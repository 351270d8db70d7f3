// What each rst command does. Each one makes at most one API call through @rst-auth/sdk and
// prints either a summary (stdout), notes for the person at the terminal (stderr), or, with
// --json, the API's JSON alone.
import {
  createApiKey,
  forgotPassword,
  getAccount,
  listApiKeys,
  login,
  register,
  resendVerification,
  resetPassword,
  revokeApiKey,
  unlinkGoogle,
  verifyEmail,
} from '@rst-auth/sdk';
import { call, type GlobalOptions, openSession, requireCredential } from './api.ts';
import { profilePath, readProfile, writeProfile } from './profile.ts';
import { accountSummary, clean, keysTable, note, out, printJson } from './render.ts';
import { type PasswordSource, readPassword } from './secrets.ts';

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
    `A six-digit code was emailed to ${account.email}; confirm it with:\n  rst verify-email --email ${account.email} --code CODE`,
  );
}

export async function verifyEmailCommand(o: With<{ email: string; code: string }>): Promise<void> {
  const s = openSession(o);
  const verified = await call(s, verifyEmail({ client: s.client, body: { email: o.email, code: o.code } }));
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
  writeProfile({ url: s.url, token: session.access_token }, s.profileFile);
  if (s.json) printJson(session);
  else out(`Signed in to ${s.url} as ${o.username}; the session lasts ${Math.round(session.expires_in / 60)} min.`);
  note(`Session saved in ${s.profileFile}.`);
  const shadowing = ['RST_TOKEN', 'RST_API_KEY'].filter((name) => process.env[name]);
  if (shadowing.length)
    note(
      `note: ${shadowing.join(' and ')} ${shadowing.length > 1 ? 'are' : 'is'} set and take${shadowing.length > 1 ? '' : 's'} precedence over the saved session.`,
    );
}

export async function logoutCommand(o: GlobalOptions): Promise<void> {
  const file = profilePath();
  const profile = readProfile(file);
  if (profile.token) {
    writeProfile({ url: profile.url }, file);
    const expires = jwtExpiry(profile.token);
    if (!o.json) {
      out(`Signed out: the stored session for ${profile.url} is forgotten.`);
      // There is no sign-out endpoint: a JWT is valid until it expires, or until a password reset.
      if (expires && expires > new Date())
        note(
          `The token itself stays valid until ${expires.toISOString()}; a password reset revokes every session at once.`,
        );
    }
  } else if (!o.json) out('Not signed in: there is no stored session.');
  const shadowing = ['RST_TOKEN', 'RST_API_KEY'].filter((name) => process.env[name]);
  if (shadowing.length) note(`note: ${shadowing.join(' and ')} still set in the environment.`);
}

/** The `exp` claim of a JWT, read without verifying it: only to tell the user, never to trust. */
function jwtExpiry(token: string): Date | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      exp?: unknown;
    };
    return typeof payload.exp === 'number' ? new Date(payload.exp * 1000) : undefined;
  } catch {
    return undefined;
  }
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
  note('The email holds a recovery token; set a new password with:\n  rst reset-password --token TOKEN');
}

export async function resetPasswordCommand(o: With<PasswordSource & { token: string }>): Promise<void> {
  const s = openSession(o);
  const password = await readPassword(o, 'New password', true);
  await call(s, resetPassword({ client: s.client, body: { token: o.token, new_password: password } }));
  // 204: the API has no JSON to print.
  if (!s.json) out('Password changed. Every earlier session is signed out; sign in again with: rst login');
}
