// Rate limits: every unauthenticated operation of the contract ends in 429 past its limit, refused
// credentials are counted per client IP, and every 429 carries Retry-After and the RateLimit-*
// fields (IETF draft-ietf-httpapi-ratelimit-headers). TRUST_PROXY decides whether the client IP
// comes from X-Forwarded-For: ignored by default, and when trusted only the hops the proxies
// appended count, so a client cannot pick its own bucket.
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import YAML from 'yaml';
import { getAccount, login, register, verifyEmail } from '../generated/sdk.gen.ts';
import { validatingFetch } from './support/contract.ts';
import { DB_LABEL } from './support/database.ts';
import { type GoogleFake, startGoogleFake } from './support/google.ts';
import { ROOT, startServer, type TestServer } from './support/server.ts';
import { uniqueUser } from './support/users.ts';

let nextIp = 1;
/** A client address of its own for each caller, so tests on one server never share a bucket. */
const freshIp = () => `10.77.${nextIp >> 8}.${nextIp++ & 255}`;
const from = (ip: string) => ({ 'X-Forwarded-For': ip });

function expectLimited(response: Response | undefined, error: unknown, limit?: number): void {
  expect(response!.status).to.equal(429);
  expect(error).to.include({ code: 'too_many_requests' });
  const retryAfter = Number(response!.headers.get('retry-after'));
  expect(retryAfter).to.be.at.least(1);
  expect(response!.headers.get('ratelimit-remaining')).to.equal('0');
  expect(Number(response!.headers.get('ratelimit-reset'))).to.equal(retryAfter);
  if (limit !== undefined) {
    expect(response!.headers.get('ratelimit-limit')).to.equal(String(limit));
    expect(response!.headers.get('ratelimit-policy')).to.match(new RegExp(`^${limit};w=\\d+$`));
  }
}

/** Registered, verified and signed in, every step from an address of its own. */
async function userOn(server: TestServer, prefix: string) {
  const user = uniqueUser(prefix);
  await register({ client: server.client, body: user, headers: from(freshIp()), throwOnError: true });
  const code = /code is: (\d{6})/.exec((await server.consoleMail(user.email)).text)![1]!;
  await verifyEmail({
    client: server.client,
    body: { email: user.email, code },
    headers: from(freshIp()),
    throwOnError: true,
  });
  const session = await login({
    client: server.client,
    body: { username: user.username, password: user.password },
    headers: from(freshIp()),
    throwOnError: true,
  });
  return { ...user, token: session.data.access_token };
}

const TIGHT = {
  TRUST_PROXY: 'true',
  RATE_LIMIT_REGISTER_IP: '2/3600',
  RATE_LIMIT_LOGIN_IP: '3/900',
  RATE_LIMIT_LOGIN_IDENTIFIER: '10/900',
  RATE_LIMIT_VERIFY_IP: '3/900',
  RATE_LIMIT_EMAIL_MINUTE: '1/60',
  RATE_LIMIT_EMAIL_HOUR: '5/3600',
  RATE_LIMIT_EMAIL_IP: '3/3600',
  RATE_LIMIT_RESET_IP: '3/900',
  RATE_LIMIT_GOOGLE_IP: '3/900',
  RATE_LIMIT_REFRESH_IP: '3/900',
  RATE_LIMIT_AUTH_FAILURE_IP: '3/900',
};

describe(`rate limits (${DB_LABEL})`, () => {
  let server: TestServer;
  let google: GoogleFake;
  before(async () => {
    google = await startGoogleFake();
    server = await startServer({
      env: { ...TIGHT, GOOGLE_CLIENT_ID: google.audience, GOOGLE_CERTS_URL: google.certsUrl },
    });
  });
  after(async () => {
    await server?.stop();
    await google?.stop();
  });

  describe('every unauthenticated operation of the contract', () => {
    const spec = YAML.parse(fs.readFileSync(path.join(ROOT, 'openapi.yaml'), 'utf8'));
    // Probes are exempt: a load balancer polls them, and they hold nothing worth guessing. So is the
    // key set: public keys, answered from memory without the database, and cacheable by anyone.
    const probes = ['healthz', 'readyz', 'getJwks'];
    const open: { operationId: string; method: string; path: string; example: unknown }[] = [];
    for (const [route, item] of Object.entries<Record<string, any>>(spec.paths)) {
      for (const [method, op] of Object.entries<any>(item)) {
        if ((op.security ?? spec.security ?? []).length > 0 || probes.includes(op.operationId)) continue;
        open.push({
          operationId: op.operationId,
          method,
          path: route,
          example: op.requestBody?.content?.['application/json']?.example,
        });
      }
    }

    it('lists the operations this covers (register, login, verification, recovery, Google)', () => {
      expect(open.map((o) => o.operationId).sort()).to.include.members([
        'forgotPassword',
        'googleSignIn',
        'login',
        'register',
        'resendVerification',
        'resetPassword',
        'verifyEmail',
      ]);
    });

    for (const op of open) {
      it(`${op.operationId}: its documented example from one address ends in 429 with RateLimit-* headers`, async () => {
        const ip = freshIp();
        const statuses: number[] = [];
        for (let i = 0; i < 12; i++) {
          const res = await validatingFetch(`${server.url}${op.path}`, {
            method: op.method.toUpperCase(),
            headers: { 'Content-Type': 'application/json', ...from(ip) },
            body: JSON.stringify(op.example),
          });
          statuses.push(res.status);
          if (res.status === 429) {
            expectLimited(res, await res.json());
            expect(res.headers.get('ratelimit-limit'), 'the exceeded quota').to.match(/^\d+$/);
            break;
          }
        }
        expect(statuses.at(-1), `statuses ${statuses.join(' ')}`).to.equal(429);
        expect(statuses.length, 'limited within the configured quota').to.be.at.most(4);
      });
    }
  });

  it('limits registrations per IP (429 names the quota and the window), other addresses unaffected', async () => {
    const ip = freshIp();
    for (let i = 0; i < 2; i++)
      await register({ client: server.client, body: uniqueUser('rl'), headers: from(ip), throwOnError: true });
    const { error, response } = await register({ client: server.client, body: uniqueUser('rl'), headers: from(ip) });
    expectLimited(response, error, 2);
    expect(response!.headers.get('ratelimit-policy')).to.equal('2;w=3600');
    expect(Number(response!.headers.get('retry-after'))).to.be.within(3500, 3600);
    const other = await register({ client: server.client, body: uniqueUser('rl'), headers: from(freshIp()) });
    expect(other.response!.status).to.equal(201);
  });

  // The one place the per-identifier lock-out is tested (instances.test.ts adds that two
  // instances share it).
  describe('login lock-out per identifier (10 failures in 15 minutes)', () => {
    const attempt = (username: string, password: string) =>
      login({ client: server.client, body: { username, password }, headers: from(freshIp()) });

    it('locks an identifier after 10 failures from any addresses, in any case: the 11th is 429 even with the right password', async () => {
      const user = await userOn(server, 'lock');
      // The limit is keyed by the identifier as submitted, normalised: any case counts together.
      const cases = [user.username, user.username.toUpperCase(), user.username.toLowerCase()];
      for (let i = 0; i < 10; i++) {
        const { error, response } = await attempt(cases[i % 3]!, `wrong ${i} password`);
        expect(response!.status, `attempt ${i + 1}`).to.equal(401);
        expect(error).to.include({ code: 'invalid_credentials' });
      }
      const { error, response } = await attempt(user.username.toUpperCase(), user.password);
      expectLimited(response, error, 10);
      expect(Number(response!.headers.get('retry-after'))).to.be.within(1, 900);
      // The lock is on sign-in only: the session already held keeps working.
      expect((await getAccount({ client: server.as(user.token), headers: from(freshIp()) })).response!.status).to.equal(
        200,
      );
    });

    it('keys the limit by identifier whether or not the account exists', async () => {
      for (let i = 0; i < 10; i++) await attempt('ghost_account', `guess ${i} guess`);
      const { error, response } = await attempt('GHOST_ACCOUNT', 'another guess');
      expectLimited(response, error, 10);
    });

    it('counts only failures: 15 sign-ins in a row pass, and a success gives its attempt back', async () => {
      const user = await userOn(server, 'refund');
      for (let i = 0; i < 15; i++) expect((await attempt(user.username, user.password)).response!.status).to.equal(200);
      for (let i = 0; i < 9; i++)
        expect((await attempt(user.username, 'wrong password')).response!.status).to.equal(401);
      expect((await attempt(user.username, user.password)).response!.status).to.equal(200);
      expect((await attempt(user.username, 'wrong password')).response!.status, 'the 10th failure').to.equal(401);
      const { error, response } = await attempt(user.username, 'wrong password');
      expectLimited(response, error, 10);
    });

    it('holds under concurrency: of 30 simultaneous wrong guesses at most 10 are checked', async () => {
      const user = await userOn(server, 'burst');
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => attempt(user.username, `burst guess ${i}`)),
      );
      const statuses = results.map((r) => r.response!.status);
      expect(statuses.filter((s) => s === 401)).to.have.length(10);
      expect(statuses.filter((s) => s === 429)).to.have.length(20);
    });
  });

  it('limits failed sign-ins per IP whatever the identifier', async () => {
    const ip = freshIp();
    for (let i = 0; i < 3; i++) {
      const { response } = await login({
        client: server.client,
        body: { username: uniqueUser('ip').username, password: 'wrong password' },
        headers: from(ip),
      });
      expect(response!.status).to.equal(401);
    }
    const { error, response } = await login({
      client: server.client,
      body: { username: uniqueUser('ip').username, password: 'wrong password' },
      headers: from(ip),
    });
    expectLimited(response, error, 3);
  });

  describe('refused credentials (401) per client IP', () => {
    it('counts refused JWTs and API keys in both header forms, then answers 429; a good token still works', async () => {
      const user = await userOn(server, 'authfail');
      const ip = freshIp();
      const refused = [
        () => getAccount({ client: server.as('not-a-jwt'), headers: from(ip) }),
        () =>
          getAccount({
            client: server.client,
            headers: { ...from(ip), 'X-API-Key': 'rst_000000000000000000000000000000000000000000' },
          }),
        () =>
          getAccount({
            client: server.client,
            headers: { ...from(ip), Authorization: 'Bearer rst_000000000000000000000000000000000000000000' },
          }),
      ];
      for (const call of refused) {
        const { error, response } = await call();
        expect(response!.status).to.equal(401);
        expect(error).to.include({ code: 'unauthorized' });
        expect(response!.headers.get('www-authenticate')).to.match(/invalid_token/);
      }
      const { error, response } = await getAccount({ client: server.as(`${user.token}x`), headers: from(ip) });
      expectLimited(response, error, 3);
      // Refusals are what is counted: a valid session from the same address is served, and a
      // request with no credential at all still gets its plain 401 challenge.
      expect((await getAccount({ client: server.as(user.token), headers: from(ip) })).response!.status).to.equal(200);
      const anonymous = await getAccount({ client: server.client, headers: from(ip) });
      expect(anonymous.response!.status).to.equal(401);
      expect(anonymous.response!.headers.get('www-authenticate')).to.equal('Bearer');
      // Another address is not affected.
      expect(
        (await getAccount({ client: server.as('not-a-jwt'), headers: from(freshIp()) })).response!.status,
      ).to.equal(401);
    });
  });

  describe('TRUST_PROXY=true (one proxy hop)', () => {
    it('believes only the address the proxy appended, not what the client put in front of it', async () => {
      const proxyAppended = freshIp();
      for (const spoofed of ['203.0.113.1', '198.51.100.7']) {
        await register({
          client: server.client,
          body: uniqueUser('spoof'),
          headers: { 'X-Forwarded-For': `${spoofed}, ${proxyAppended}` },
          throwOnError: true,
        });
      }
      const { error, response } = await register({
        client: server.client,
        body: uniqueUser('spoof'),
        headers: { 'X-Forwarded-For': `192.0.2.99, ${proxyAppended}` },
      });
      expectLimited(response, error, 2);
    });
  });
});

describe(`rate limits without TRUST_PROXY (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { RATE_LIMIT_REGISTER_IP: '2/3600' } });
  });
  after(async () => {
    await server?.stop();
  });

  it('ignores X-Forwarded-For: every request from this socket shares one bucket', async () => {
    for (let i = 0; i < 2; i++)
      await register({ client: server.client, body: uniqueUser('xff'), headers: from(freshIp()), throwOnError: true });
    const { error, response } = await register({
      client: server.client,
      body: uniqueUser('xff'),
      headers: from(freshIp()),
    });
    expectLimited(response, error, 2);
  });
});
