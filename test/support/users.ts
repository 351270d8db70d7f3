// Accounts for tests: unique names per call, and accounts registered, verified with the code from
// the mail the service sent (console or SMTP) and signed in.
import { randomBytes } from 'node:crypto';
import { login, register, verifyEmail } from '../../generated/sdk.gen.ts';
import { codeFrom, type TestSmtp } from './mail.ts';
import type { TestServer } from './server.ts';

let counter = 0;
/** A unique username/email pair for one test. */
export function uniqueUser(prefix = 'user'): { username: string; email: string; password: string } {
  const id = `${Date.now().toString(36)}${(counter++).toString(36)}${randomBytes(2).toString('hex')}`;
  return {
    username: `${prefix}_${id}`.slice(0, 32),
    email: `${prefix}.${id}@example.test`,
    password: `pass phrase ${randomBytes(6).toString('hex')}`,
  };
}

async function signedUp(server: TestServer, prefix: string, mailTo: (email: string) => Promise<{ text: string }>) {
  const user = uniqueUser(prefix);
  const created = await register({ client: server.client, body: user, throwOnError: true });
  const code = codeFrom(await mailTo(user.email));
  await verifyEmail({ client: server.client, body: { email: user.email, code }, throwOnError: true });
  const session = await login({
    client: server.client,
    body: { username: user.username, password: user.password },
    throwOnError: true,
  });
  return {
    ...user,
    id: created.data.id,
    token: session.data.access_token,
    refreshToken: session.data.refresh_token,
    code,
  };
}

/** Another session of an account: a JWT of a new sign-in. */
export async function signIn(server: TestServer, username: string, password: string): Promise<string> {
  const session = await login({ client: server.client, body: { username, password }, throwOnError: true });
  return session.data.access_token;
}

/** Registers an account, verifies it with the code from the console mailer, signs in. */
export const registeredUser = (server: TestServer, prefix = 'user') =>
  signedUp(server, prefix, (email) => server.consoleMail(email));

/** Registers an account, verifies it with the code from the SMTP mail, signs in. */
export const verifiedUser = (server: TestServer, smtp: TestSmtp, prefix = 'user') =>
  signedUp(server, prefix, (email) => smtp.waitFor(email));
