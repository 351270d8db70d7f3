import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
// The package's own name, resolved through the workspace link and sdk/package.json "exports" (the
// rst-source condition, set in .mocharc.json, picks the TypeScript source over the built dist/).
import * as sdk from '@rst-auth/sdk';
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
  const child = spawn(process.execPath, ['--conditions=rst-source', path.join(ROOT, 'scripts/example.ts'), ...args], {
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

  describe('@rst-auth/sdk', () => {
    it('resolves to sdk/index.ts and exports the generated operations themselves', () => {
      expect(import.meta.resolve('@rst-auth/sdk')).to.equal(pathToFileURL(path.join(ROOT, 'sdk', 'index.ts')).href);
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
        expect(sdk.createRstClient({ baseUrl: server.url })[op], op).to.be.a('function');
      }
    });

    it('sets the base URL and a JWT once; the credential goes in Authorization only', async () => {
      const user = await registeredUser(server, 'sdk');
      const sent: Headers[] = [];
      const rst = sdk.createRstClient({
        baseUrl: server.url,
        token: user.token,
        headers: { 'User-Agent': 'sdk-test/1' },
        fetch: (input: RequestInfo | URL, init?: RequestInit) => {
          sent.push(new Request(input, init).headers);
          return validatingFetch(input, init);
        },
      });
      const account = await rst.getAccount();
      expect(account.username).to.equal(user.username);
      expect(sent).to.have.length(1);
      expect(sent[0]!.get('authorization')).to.equal(`Bearer ${user.token}`);
      expect(sent[0]!.get('x-api-key')).to.equal(null);
      expect(sent[0]!.get('user-agent')).to.equal('sdk-test/1');
    });

    it('reads the credential at call time when given a function, and sends none when it returns nothing', async () => {
      const user = await registeredUser(server, 'sdkfn');
      let current: string | undefined;
      const rst = sdk.createRstClient({ baseUrl: server.url, fetch: validatingFetch, token: async () => current });
      const before = await rst.getAccount().catch((err: unknown) => err);
      expect(before).to.be.instanceOf(sdk.RstProblem).and.include({ status: 401, code: 'unauthorized' });
      expect((before as sdk.RstProblem).response.headers.get('www-authenticate')).to.equal('Bearer');
      current = user.token;
      expect((await rst.getAccount()).id).to.equal(user.id);
    });

    it('throws a refusal as an RstProblem with its status, code, type, request id and document', async () => {
      const rst = sdk.createRstClient({ baseUrl: server.url, fetch: validatingFetch, token: 'not-a-jwt' });
      const err = await rst.getAccount().catch((e: unknown) => e);
      expect(err).to.be.instanceOf(sdk.RstProblem).and.instanceOf(Error);
      const problem = err as sdk.RstProblem;
      expect(problem).to.include({ name: 'RstProblem', status: 401, code: 'unauthorized', retryAfter: undefined });
      expect(problem.type).to.equal('urn:rst-auth:problem:unauthorized');
      expect(problem.requestId).to.equal(problem.response.headers.get('x-request-id')).and.be.a('string');
      expect(problem.problem).to.include({ code: 'unauthorized', status: 401 });
      expect(problem.message).to.include(problem.title);
      expect(problem.response.headers.get('www-authenticate')).to.equal('Bearer error="invalid_token"');
    });

    it("carries the fields' errors of validation_failed", async () => {
      const rst = sdk.createRstClient({ baseUrl: server.url, fetch: validatingFetch });
      const err = await rst
        .register({ body: { username: 'ok_name', email: 'not an email', password: 'correct horse battery' } })
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(sdk.RstProblem).and.include({ status: 400, code: 'validation_failed' });
      const { errors } = err as sdk.RstProblem;
      expect(errors).to.be.an('array').that.is.not.empty;
      expect(errors!.map((e) => e.path).join(' ')).to.include('email');
    });

    it('reads Retry-After in seconds from a 429', async () => {
      const tight = await startServer({ env: { RATE_LIMIT_LOGIN_IP: '2/900' } });
      try {
        const rst = sdk.createRstClient({ baseUrl: tight.url, fetch: validatingFetch });
        const attempt = () =>
          rst.login({ body: { username: 'nobody', password: 'wrong password' } }).catch((e: unknown) => e);
        expect(await attempt()).to.include({ code: 'invalid_credentials' });
        expect(await attempt()).to.include({ code: 'invalid_credentials' });
        const limited = (await attempt()) as sdk.RstProblem;
        expect(limited).to.be.instanceOf(sdk.RstProblem).and.include({ status: 429, code: 'too_many_requests' });
        expect(limited.retryAfter).to.be.a('number').within(1, 900);
        expect(limited.retryAfter).to.equal(Number(limited.response.headers.get('retry-after')));
      } finally {
        await tight.stop();
      }
    });

    it('rethrows the network error when nothing answers, and refuses a redirect when asked to', async () => {
      const probe = net.createServer();
      await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
      const { port } = probe.address() as net.AddressInfo;
      await new Promise<void>((resolve) => probe.close(() => resolve()));
      const down = sdk.createRstClient({ baseUrl: `http://127.0.0.1:${port}` });
      const err = await down.healthz().catch((e: unknown) => e);
      expect(err).to.be.instanceOf(TypeError).and.not.instanceOf(sdk.RstProblem);
      expect((err as TypeError).message).to.match(/fetch failed/);

      // A redirect to the real server: followed by default, a network error under redirect: 'error'.
      const redirector = http.createServer((req, res) =>
        res.writeHead(302, { location: `${server.url}${req.url}` }).end(),
      );
      await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
      try {
        const at = `http://127.0.0.1:${(redirector.address() as net.AddressInfo).port}`;
        expect(await sdk.createRstClient({ baseUrl: at }).healthz()).to.deep.equal({ status: 'ok' });
        const refused = await sdk
          .createRstClient({ baseUrl: at, redirect: 'error' })
          .healthz()
          .catch((e: unknown) => e);
        expect(refused).to.be.instanceOf(TypeError).and.not.instanceOf(sdk.RstProblem);
      } finally {
        await new Promise<void>((resolve) => redirector.close(() => resolve()));
      }
    });

    it('works with an API key; the key cannot mint another key (jwt_required)', async () => {
      const user = await registeredUser(server, 'sdkkey');
      const withSession = sdk.createRstClient({ baseUrl: server.url, fetch: validatingFetch, token: user.token });
      const key = await withSession.createApiKey({ body: { name: 'sdk test' } });
      const withKey = sdk.createRstClient({ baseUrl: server.url, fetch: validatingFetch, apiKey: key.raw_key });
      expect((await withKey.getAccount()).username).to.equal(user.username);
      const minted = await withKey.createApiKey({ body: { name: 'from a key' } }).catch((e: unknown) => e);
      expect(minted).to.be.instanceOf(sdk.RstProblem).and.include({ status: 403, code: 'jwt_required' });
      const { items } = await withSession.listApiKeys();
      expect(items.map((k) => k.id)).to.deep.equal([key.id]);
      expect(await withSession.revokeApiKey({ path: { key_id: key.id } })).to.not.be.a('string');
      const gone = await withKey.getAccount().catch((e: unknown) => e);
      expect(gone).to.include({ status: 401, code: 'unauthorized' });
    });

    it('still serves the generated functions with the same client', async () => {
      const rst = sdk.createRstClient({ baseUrl: server.url, fetch: validatingFetch });
      const { data, response } = await sdk.healthz({ client: rst.client });
      expect(response?.status).to.equal(200);
      expect(data).to.deep.equal({ status: 'ok' });
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
      const anonymous = sdk.createRstClient({ baseUrl: server.url, fetch: validatingFetch });
      const session = await anonymous.login({ body: { username: user.email, password: user.password } });
      const owner = sdk.createRstClient({ baseUrl: server.url, fetch: validatingFetch, token: session.access_token });
      expect(await owner.getAccount()).to.include({ username: user.username, email_verified: true });
      const keys = await owner.listApiKeys();
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
