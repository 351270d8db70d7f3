// A consumer's plain ESM script (no TypeScript, no build step) using the installed @rst-auth/sdk:
// register, verify with the code from stdin, log in, create an API key, read the account with the
// key. Run by test/packages.test.ts with the machine's own Node.
// Usage: node walk.mjs BASE_URL USERNAME EMAIL PASSWORD < code
import { createRstClient, RstProblem } from '@rst-auth/sdk';
import { createInterface } from 'node:readline';

const [baseUrl, username, email, password] = process.argv.slice(2);
const readLine = () =>
  new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin });
    rl.once('line', (line) => {
      rl.close();
      resolve(line.trim());
    });
  });

console.log(`node ${process.version}`);
const anonymous = createRstClient({ baseUrl });
const created = await anonymous.register({ body: { username, email, password } });
console.log(`registered ${created.username} verified=${created.email_verified}`);

const code = await readLine();
const verified = await anonymous.verifyEmail({ body: { email, code } });
console.log(`verified ${verified.email} verified=${verified.email_verified}`);

try {
  await anonymous.login({ body: { username, password: 'not the password' } });
  console.log('a wrong password was accepted');
} catch (err) {
  if (!(err instanceof RstProblem)) throw err;
  console.log(`refused ${err.status} ${err.code}`);
}

const session = await anonymous.login({ body: { username, password } });
console.log(`logged in ${session.token_type} expires_in=${session.expires_in}`);

const withSession = createRstClient({ baseUrl, token: session.access_token });
const key = await withSession.createApiKey({ body: { name: 'consumer' } });
console.log(`key ${key.prefix} ${key.raw_key.startsWith(key.prefix)}`);

const withKey = createRstClient({ baseUrl, apiKey: key.raw_key });
const account = await withKey.getAccount();
console.log(`account ${account.username} ${account.email} plan=${account.plan}`);
