// The whole account lifecycle through the SDK, against a running server:
//
//   register → verify the email with the mailed code → log in (JWT) → create an API key with the
//   JWT ("session first, key second") → read the account with the key → revoke it → see it refused
//
// Start the server (`npm start`) in one terminal and run `npm run example` in another; when asked,
// type the six-digit code the server printed (the console mailer writes mail to its output when
// SMTP_URL is unset). Options: --url (or RST_URL; default http://127.0.0.1:3000), --username,
// --email, --password (default: a fresh example account).
import { randomBytes } from 'node:crypto';
import readline from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { createRstClient, RstProblem } from '@rst-auth/sdk';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    username: { type: 'string' },
    email: { type: 'string' },
    password: { type: 'string' },
  },
});
const baseUrl = args.url ?? process.env.RST_URL ?? 'http://127.0.0.1:3000';
const id = randomBytes(4).toString('hex');
const user = {
  username: args.username ?? `example_${id}`,
  email: args.email ?? `example.${id}@example.com`,
  password: args.password ?? `example passphrase ${randomBytes(8).toString('hex')}`,
};

const step = (n: number, text: string) => console.log(`${n}. ${text}`);

async function askCode(email: string): Promise<string> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: false });
  try {
    const answer = await rl.question(`   verification code sent to ${email} (the server's console shows it): `);
    // A terminal echoes the typed line; piped input does not, so end the prompt's line here.
    if (!process.stdin.isTTY) process.stdout.write('\n');
    return answer.trim();
  } finally {
    rl.close();
  }
}

async function main(): Promise<void> {
  console.log(`rst auth SDK example against ${baseUrl}`);
  // No credential yet: register, verify and login are public operations.
  const anonymous = createRstClient({ baseUrl });

  const created = await anonymous.register({ body: user });
  step(
    1,
    `registered ${created.username} <${created.email}> (id ${created.id}, email_verified ${created.email_verified})`,
  );

  const code = await askCode(created.email);
  const verified = await anonymous.verifyEmail({ body: { email: created.email, code } });
  step(2, `verified ${verified.email} (email_verified ${verified.email_verified})`);

  const session = await anonymous.login({ body: { username: user.username, password: user.password } });
  step(3, `logged in: a ${session.token_type} JWT valid for ${session.expires_in} s`);

  // The JWT session mints the key; the raw key is in this response only.
  const withSession = createRstClient({ baseUrl, token: session.access_token });
  const key = await withSession.createApiKey({ body: { name: 'sdk example' } });
  step(
    4,
    `created API key "${key.name}" ${key.prefix}… (id ${key.id}; the full key is shown once and never stored by the server)`,
  );

  const withKey = createRstClient({ baseUrl, apiKey: key.raw_key });
  const account = await withKey.getAccount();
  step(
    5,
    `read the account with the key: ${account.username}, plan ${account.plan}, sign-in methods [${account.available_sign_in_methods.join(', ')}]`,
  );

  await withSession.revokeApiKey({ path: { key_id: key.id } });
  step(6, `revoked ${key.prefix}…`);

  const refused = await withKey.getAccount().then(
    () => undefined,
    (err: unknown) => {
      if (err instanceof RstProblem) return err;
      throw err;
    },
  );
  if (refused?.status !== 401) throw new Error('the revoked key was not refused with 401');
  step(7, `the revoked key is refused: ${refused.status} ${refused.code}`);
  console.log('done');
}

main().catch((err: unknown) => {
  if (err instanceof RstProblem) {
    console.error(`failed: ${err.status} ${err.code}${err.detail ? ` (${err.detail})` : ''}`);
  } else if (err instanceof TypeError && /fetch failed/.test(err.message)) {
    console.error(`failed: cannot reach ${baseUrl}: is the server running (npm start)?`);
  } else {
    console.error('failed:', err instanceof Error ? err.message : err);
  }
  process.exitCode = 1;
});
