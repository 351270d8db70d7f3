// POST /v1/auth/introspect: a product backend, holding a service key, asks what a token its user
// sent is. Anything not valid now is 200 {active: false}; only the caller's own service key can
// earn a 401 or a 429. Service keys and user credentials never stand in for each other.
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { createApiKey, getAccount, introspect, listApiKeys, logout, revokeApiKey } from '../generated/sdk.gen.ts';
import { ALPHABET, expectedChecksum } from './support/keyFormat.ts';
import { DB_LABEL, ON_POSTGRES } from './support/database.ts';
import { startServer, TEST_ENV, type TestServer } from './support/server.ts';
import { createServiceKey, migratedDatabase, serviceKeyCommand } from './support/serviceKeys.ts';
import { registeredUser } from './support/users.ts';

const INVALID_TOKEN = 'Bearer error="invalid_token"';
const seconds = (iso: string) => Math.floor(new Date(iso).getTime() / 1000);
const base62 = (n: number) => [...randomBytes(n)].map((b) => ALPHABET[b % 62]).join('');
/** A key of the right shape and checksum that the service never issued. */
const madeUp = (prefix: string) => {
  const random = base62(36);
  return `${prefix}${random}${expectedChecksum(random)}`;
};
const flipLast = (s: string) => `${s.slice(0, -1)}${s.endsWith('A') ? 'B' : 'A'}`;
const hs256 = (claims: object, secret = TEST_ENV.JWT_SECRET!) =>
  jwt.sign(claims, secret, { algorithm: 'HS256', issuer: 'rst', audience: 'rst-api' });
const sidOf = (token: string) => (jwt.decode(token) as { sid: string }).sid;

async function inspect(server: TestServer, serviceKey: string, token: string) {
  const result = await introspect({ client: server.as(serviceKey), body: { token } });
  return { ...result, status: result.response!.status };
}

async function expectInactive(server: TestServer, serviceKey: string, token: string, what: string) {
  const { status, data, response } = await inspect(server, serviceKey, token);
  expect(status, what).to.equal(200);
  expect(data, what).to.deep.equal({ active: false });
  expect(response!.headers.get('cache-control')).to.equal('no-store');
}

async function expectCallerRefused(server: TestServer, authorization: string | undefined, challenge: string) {
  const res = await fetch(`${server.url}/v1/auth/introspect`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
    body: JSON.stringify({ token: 'anything' }),
  });
  expect(res.status, authorization).to.equal(401);
  expect(res.headers.get('www-authenticate')).to.equal(challenge);
  expect(((await res.json()) as { code: string }).code).to.equal('unauthorized');
}

describe(`introspect (${DB_LABEL})`, () => {
  let server: TestServer;
  let shop: string;
  let revokedService: string;
  let user: Awaited<ReturnType<typeof registeredUser>>;
  before(async function () {
    this.timeout(60_000);
    // Service keys are made by the operator's command, before the server starts (PGlite is
    // single-process): one to use, one revoked at once.
    const database = await migratedDatabase();
    shop = await createServiceKey(database, 'shop');
    revokedService = await createServiceKey(database, 'retired');
    expect((await serviceKeyCommand(database, 'revoke', 'retired')).code).to.equal(0);
    server = await startServer({ database });
    user = await registeredUser(server, 'intro');
  });
  after(async () => {
    await server?.stop();
  });
  /** What introspection says of the test's user, whatever the token. */
  const owner = () => ({
    sub: user.id,
    username: user.username,
    email: user.email,
    email_verified: true,
    plan: 'free',
    plan_source: 'default',
  });

  it('describes a live session JWT: its owner, issue and expiry', async () => {
    const { status, data, response } = await inspect(server, shop, user.token);
    expect(status).to.equal(200);
    expect(response!.headers.get('cache-control')).to.equal('no-store');
    const claims = jwt.decode(user.token) as jwt.JwtPayload;
    expect(data).to.deep.equal({
      active: true,
      token_type: 'access_token',
      ...owner(),
      iat: claims.iat,
      exp: claims.exp,
      session_id: claims.sid,
    });
  });

  it('describes a live API key: no expiry, no scopes, its id', async () => {
    const { data: key } = await createApiKey({
      client: server.as(user.token),
      body: { name: 'plain' },
      throwOnError: true,
    });
    const { data } = await inspect(server, shop, key.raw_key);
    expect(data).to.deep.equal({
      active: true,
      token_type: 'api_key',
      ...owner(),
      iat: seconds(key.created_at),
      exp: null,
      key_id: key.id,
      scopes: [],
    });
  });

  it('returns a key’s scopes, in the order given, and its expiry', async () => {
    const scopes = ['projects:write', 'billing.read', 'a'];
    const { data: key } = await createApiKey({
      client: server.as(user.token),
      body: { name: 'scoped', scopes, expires_in_days: 30 },
      throwOnError: true,
    });
    const { data } = await inspect(server, shop, key.raw_key);
    expect(data).to.include({ active: true, token_type: 'api_key', key_id: key.id, exp: seconds(key.expires_at!) });
    expect((data as { scopes: string[] }).scopes).to.deep.equal(scopes);
    expect(seconds(key.expires_at!) - seconds(key.created_at)).to.be.closeTo(30 * 86400, 2);
  });

  it('says only {active: false} for a revoked key', async () => {
    const { data: key } = await createApiKey({
      client: server.as(user.token),
      body: { name: 'gone' },
      throwOnError: true,
    });
    expect((await inspect(server, shop, key.raw_key)).data).to.include({ active: true });
    await revokeApiKey({ client: server.as(user.token), path: { key_id: key.id }, throwOnError: true });
    await expectInactive(server, shop, key.raw_key, 'revoked key');
  });

  it('says {active: false} for malformed tokens, never a 4xx', async () => {
    const [h, p, s] = user.token.split('.');
    const cases: [string, string][] = [
      ['empty', ''],
      ['garbage', 'not a token'],
      ['a Bearer header pasted whole', `Bearer ${user.token}`],
      ['a key with a wrong checksum', flipLast(madeUp('rst_'))],
      ['an rst_ key too short', 'rst_abc'],
      ['a JWT with a broken signature', `${h}.${p}.${s!.slice(0, -3)}abc`],
      ['a JWT cut short', `${h}.${p}`],
      ['8 KiB of noise', 'x'.repeat(8192)],
      ['alg none', `${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`],
    ];
    for (const [what, token] of cases) await expectInactive(server, shop, token, what);
  });

  it('says {active: false} for foreign and expired tokens', async () => {
    const now = Math.floor(Date.now() / 1000);
    const sid = sidOf(user.token);
    const cases: [string, string][] = [
      [
        'a JWT signed with another secret',
        hs256({ sub: user.id, sid, exp: now + 600 }, 'another-secret-another-secret-0123456789'),
      ],
      [
        'a JWT for another audience',
        jwt.sign({ sub: user.id, sid, exp: now + 600, aud: 'x', iss: 'rst' }, TEST_ENV.JWT_SECRET!),
      ],
      ['an expired JWT', hs256({ sub: user.id, sid, exp: now - 5 })],
      [
        'a JWT of an account that does not exist',
        hs256({ sub: '00000000-0000-4000-8000-000000000000', sid, exp: now + 600 }),
      ],
      [
        'a JWT naming a session that does not exist',
        hs256({ sub: user.id, sid: '00000000-0000-4000-8000-000000000000', exp: now + 600 }),
      ],
      ['a JWT naming no session', hs256({ sub: user.id, exp: now + 600 })],
      ['a well-formed rst_ key never issued', madeUp('rst_')],
      ['a service key', shop],
      ['a made-up service key', madeUp('rst_svc_')],
    ];
    for (const [what, token] of cases) await expectInactive(server, shop, token, what);
    // The control: the same recipe with the right secret and session is active.
    expect((await inspect(server, shop, hs256({ sub: user.id, sid, exp: now + 600 }))).data).to.include({
      active: true,
    });
  });

  it('says {active: false} for a JWT whose session has ended (logout)', async () => {
    const other = await registeredUser(server, 'ended');
    expect((await inspect(server, shop, other.token)).data).to.include({
      active: true,
      session_id: sidOf(other.token),
    });
    await logout({ client: server.as(other.token), throwOnError: true });
    await expectInactive(server, shop, other.token, 'ended session');
  });

  it('accepts an RFC 7662 token_type_hint and ignores it', async () => {
    const { data } = await introspect({
      client: server.as(shop),
      body: { token: user.token, token_type_hint: 'refresh_token' },
      throwOnError: true,
    });
    expect(data).to.include({ active: true, token_type: 'access_token' });
  });

  it('refuses a body without a token, or with fields it does not know, with 400', async () => {
    for (const body of [{}, { token: user.token, extra: 1 }, { token: 42 }]) {
      const { response, error } = await introspect({ client: server.as(shop), body: body as never });
      expect(response!.status, JSON.stringify(body)).to.equal(400);
      expect(error).to.include({ code: 'validation_failed' });
    }
  });

  it('answers 401 without a service key, and for a user credential, a revoked or a made-up service key', async () => {
    const { data: key } = await createApiKey({
      client: server.as(user.token),
      body: { name: 'user key' },
      throwOnError: true,
    });
    await expectCallerRefused(server, undefined, 'Bearer');
    await expectCallerRefused(server, `Bearer ${user.token}`, INVALID_TOKEN);
    await expectCallerRefused(server, `Bearer ${key.raw_key}`, INVALID_TOKEN);
    await expectCallerRefused(server, `Bearer ${revokedService}`, INVALID_TOKEN);
    await expectCallerRefused(server, `Bearer ${madeUp('rst_svc_')}`, INVALID_TOKEN);
    await expectCallerRefused(server, `Bearer ${flipLast(shop)}`, INVALID_TOKEN);
    await expectCallerRefused(server, `Basic ${Buffer.from(`x:${shop}`).toString('base64')}`, INVALID_TOKEN);
    const viaHeader = await fetch(`${server.url}/v1/auth/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': shop },
      body: JSON.stringify({ token: user.token }),
    });
    expect(viaHeader.status).to.equal(401);
  });

  it('never accepts a service key as a user credential', async () => {
    for (const client of [server.as(shop)]) {
      const read = await getAccount({ client });
      expect(read.response!.status).to.equal(401);
      expect(read.response!.headers.get('www-authenticate')).to.equal(INVALID_TOKEN);
      expect((await listApiKeys({ client })).response!.status).to.equal(401);
    }
    const res = await fetch(`${server.url}/v1/me/account`, { headers: { 'x-api-key': shop } });
    expect(res.status).to.equal(401);
  });

  if (ON_POSTGRES) {
    it('says {active: false} for a key the moment it expires (expires_at moved with SQL)', async () => {
      const { data: key } = await createApiKey({
        client: server.as(user.token),
        body: { name: 'soon', expires_in_days: 1 },
        throwOnError: true,
      });
      expect((await inspect(server, shop, key.raw_key)).data).to.include({ active: true });
      await server.sql(`update api_keys set expires_at = now() - interval '1 second' where id = $1`, [key.id]);
      await expectInactive(server, shop, key.raw_key, 'expired key');
    });

    it('refuses a service key revoked by the operator while the server runs, at once', async () => {
      const temp = await createServiceKey(server.database, 'temporary');
      expect((await inspect(server, temp, user.token)).status).to.equal(200);
      const listed = await serviceKeyCommand(server.database, 'list');
      expect(listed.stdout).to.match(/^temporary +rst_svc_[0-9A-Za-z]{8} /m);
      expect((await serviceKeyCommand(server.database, 'revoke', 'temporary')).code).to.equal(0);
      await expectCallerRefused(server, `Bearer ${temp}`, INVALID_TOKEN);
    });
  }
});

describe(`introspect limits (${DB_LABEL})`, () => {
  let server: TestServer;
  let first: string;
  let second: string;
  before(async function () {
    this.timeout(60_000);
    const database = await migratedDatabase();
    first = await createServiceKey(database, 'first');
    second = await createServiceKey(database, 'second');
    server = await startServer({
      database,
      env: { RATE_LIMIT_INTROSPECT: '5/60', RATE_LIMIT_AUTH_FAILURE_IP: '3/900' },
    });
  });
  after(async () => {
    await server?.stop();
  });

  it('limits each service key on its own, whatever address it calls from, and refused tokens cost the IP nothing', async () => {
    const user = await registeredUser(server, 'limits');
    // Five inactive tokens: more than the three refused credentials the IP may send.
    for (let i = 0; i < 5; i++) await expectInactive(server, first, `garbage ${i}`, `call ${i + 1}`);
    const over = await inspect(server, first, user.token);
    expect(over.status).to.equal(429);
    expect(over.error).to.include({ code: 'too_many_requests' });
    expect(over.response!.headers.get('ratelimit-limit')).to.equal('5');
    expect(over.response!.headers.get('ratelimit-policy')).to.equal('5;w=60');
    expect(Number(over.response!.headers.get('retry-after'))).to.be.within(1, 60);
    // Another service key from the same address has its own budget.
    const other = await inspect(server, second, user.token);
    expect(other.status).to.equal(200);
    expect(other.data).to.include({ active: true });
    // The address has not been charged for the inactive tokens: a refused credential is a 401.
    const refused = await getAccount({ client: server.as('not a token') });
    expect(refused.response!.status).to.equal(401);
  });

  it('counts refused service keys against the caller’s IP, like any refused credential', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await inspect(server, madeUp('rst_svc_'), 'x')).status);
    // One refused credential was spent by the test above; the limit is 3 per IP.
    expect(statuses).to.deep.equal([401, 401, 429, 429]);
  });
});
