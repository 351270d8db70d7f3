import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
// The package's own name: resolved through package.json "exports", as a consumer imports it.
import * as sdk from 'rst-auth/sdk';
import * as generated from '../generated/sdk.gen.ts';
import { validatingFetch } from './support/contract.ts';
import { DB_LABEL } from './support/database.ts';
import { ROOT, startServer, type TestServer } from './support/server.ts';
import { registeredUser, uniqueUser } from './support/users.ts';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs scripts/example.ts as `npm run example` does; `answer` types the code when it is asked. */
function runExample(
  env: Record<string, string>,
  args: string[],
  answer: (stdout: string) => Promise<string>,
): Promise<Run> {
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/example.ts'), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let asked = false;
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    if (!asked && /verification code sent to .+: $/m.test(stdout)) {
      asked = true;
      answer(stdout).then(
        (line) => child.stdin.end(`${line}\n`),
        (err: Error) => {
          stderr += `test could not answer: ${err.message}\n`;
          child.kill();
        },
      );
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

const codeFrom = (mail: { text: string }) => /code is: (\d{6})/.exec(mail.text)![1]!;

describe(`the SDK and the example (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server.stop();
  });

  describe("the package's ./sdk export", () => {
    it('resolves rst-auth/sdk to sdk.ts and exports the generated operations themselves', () => {
      expect(import.meta.resolve('rst-auth/sdk')).to.equal(pathToFileURL(path.join(ROOT, 'sdk.ts')).href);
      for (const op of [
        'register',
        'login',
        'verifyEmail',
        'createApiKey',
        'listApiKeys',
        'revokeApiKey',
        'getAccount',
        'unlinkGoogle',
      ] as const) {
        // biome-ignore lint/performance/noDynamicNamespaceImportAccess: comparing every export by name
        expect(sdk[op], op).to.equal(generated[op]);
      }
      expect(sdk.createClient).to.be.a('function');
    });

    it('sets the base URL and a JWT once; the credential goes in Authorization only', async () => {
      const user = await registeredUser(server, 'sdk');
      const sent: Headers[] = [];
      const client = sdk.createClient({
        baseUrl: server.url,
        auth: user.token,
        fetch: (input, init) => {
          sent.push(new Request(input, init).headers);
          return validatingFetch(input, init);
        },
      });
      const { data, response } = await sdk.getAccount({ client });
      expect(response?.status).to.equal(200);
      expect(data!.username).to.equal(user.username);
      expect(sent).to.have.length(1);
      expect(sent[0]!.get('authorization')).to.equal(`Bearer ${user.token}`);
      expect(sent[0]!.get('x-api-key')).to.equal(null);
    });

    it('reads the credential at call time when given a function, and sends none when it returns nothing', async () => {
      const user = await registeredUser(server, 'sdkfn');
      let current: string | undefined;
      const client = sdk.createClient({ baseUrl: server.url, fetch: validatingFetch, auth: async () => current });
      const before = await sdk.getAccount({ client });
      expect(before.response?.status).to.equal(401);
      expect(before.response?.headers.get('www-authenticate')).to.equal('Bearer');
      current = user.token;
      const after = await sdk.getAccount({ client });
      expect(after.response?.status).to.equal(200);
      expect(after.data!.id).to.equal(user.id);
    });

    it('surfaces a refused credential as a typed problem (401 unauthorized, invalid_token)', async () => {
      const client = sdk.createClient({ baseUrl: server.url, fetch: validatingFetch, auth: 'not-a-jwt' });
      const { error, response } = await sdk.getAccount({ client });
      expect(response?.status).to.equal(401);
      expect(error).to.include({ code: 'unauthorized' });
      expect(response?.headers.get('www-authenticate')).to.equal('Bearer error="invalid_token"');
    });

    it('works with an API key as the credential', async () => {
      const user = await registeredUser(server, 'sdkkey');
      const withSession = sdk.createClient({ baseUrl: server.url, fetch: validatingFetch, auth: user.token });
      const { data: key } = await sdk.createApiKey({
        client: withSession,
        body: { name: 'sdk test' },
        throwOnError: true,
      });
      const withKey = sdk.createClient({ baseUrl: server.url, fetch: validatingFetch, auth: key.raw_key });
      const { data, response } = await sdk.getAccount({ client: withKey });
      expect(response?.status).to.equal(200);
      expect(data!.username).to.equal(user.username);
      // "Session first, key second": the key cannot mint another key.
      const minted = await sdk.createApiKey({ client: withKey, body: { name: 'from a key' } });
      expect(minted.response?.status).to.equal(403);
      expect(minted.error).to.include({ code: 'jwt_required' });
    });
  });

  describe('scripts/example.ts (npm run example)', () => {
    it('runs the whole lifecycle against the server with the code from its console mail', async () => {
      const user = uniqueUser('example');
      const run = await runExample(
        { RST_URL: server.url },
        ['--username', user.username, '--email', user.email, '--password', user.password],
        async () => codeFrom(await server.consoleMail(user.email)),
      );
      expect(run.stderr).to.equal('');
      expect(run.code, run.stdout).to.equal(0);
      const lines = run.stdout.split('\n');
      const step = (n: number) => lines.find((l) => l.startsWith(`${n}. `)) ?? '';
      expect(step(1)).to.include(`registered ${user.username} <${user.email}>`).and.include('email_verified false');
      expect(step(2)).to.include(`verified ${user.email} (email_verified true)`);
      expect(step(3)).to.match(/logged in: a bearer JWT valid for \d+ s/);
      expect(step(4)).to.match(/created API key "sdk example" rst_[0-9A-Za-z]{8}…/);
      expect(step(5)).to.include(
        `read the account with the key: ${user.username}, plan free, sign-in methods [password]`,
      );
      expect(step(6)).to.match(/revoked rst_[0-9A-Za-z]{8}…/);
      expect(step(7)).to.include('the revoked key is refused: 401 unauthorized');
      expect(lines).to.include('done');
      // The full key is shown once by the API, never printed by the example.
      expect(run.stdout).to.not.match(/rst_[0-9A-Za-z]{42}/);

      // What the script did is real: the account is verified and holds no active key.
      const client = sdk.createClient({ baseUrl: server.url, fetch: validatingFetch });
      const { data: session } = await sdk.login({
        client,
        body: { username: user.email, password: user.password },
        throwOnError: true,
      });
      const owner = sdk.createClient({ baseUrl: server.url, fetch: validatingFetch, auth: session.access_token });
      const { data: account } = await sdk.getAccount({ client: owner, throwOnError: true });
      expect(account).to.include({ username: user.username, email_verified: true });
      const { data: keys } = await sdk.listApiKeys({ client: owner, throwOnError: true });
      expect(keys.items).to.deep.equal([]);
    });

    it('stops with the problem code and exit status 1 on a wrong verification code', async () => {
      const user = uniqueUser('exbad');
      const run = await runExample(
        { RST_URL: server.url },
        ['--username', user.username, '--email', user.email, '--password', user.password],
        async () => {
          const code = codeFrom(await server.consoleMail(user.email));
          return code === '000000' ? '000001' : '000000';
        },
      );
      expect(run.code).to.equal(1);
      expect(run.stderr).to.match(/^failed: 400 invalid_code/);
      expect(run.stdout).to.match(/^1\. registered/m);
      expect(run.stdout).to.not.match(/^2\. /m);
    });

    it('says the server cannot be reached, with exit status 1, when nothing listens at RST_URL', async () => {
      const probe = net.createServer();
      await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
      const { port } = probe.address() as net.AddressInfo;
      await new Promise<void>((resolve) => probe.close(() => resolve()));
      const run = await runExample({ RST_URL: `http://127.0.0.1:${port}` }, [], async () => {
        throw new Error('the example must not ask for a code');
      });
      expect(run.code).to.equal(1);
      expect(run.stderr).to.include(`failed: cannot reach http://127.0.0.1:${port}`);
    });
  });
});
