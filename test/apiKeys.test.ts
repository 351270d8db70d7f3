import { expect } from 'chai';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import pg from 'pg';
import { createClient, type Client } from '../generated/client/index.ts';
import { createApiKey, getAccount, listApiKeys, revokeApiKey, unlinkGoogle } from '../generated/sdk.gen.ts';
import { isWellFormedApiKey, newApiKey } from '../lib/apiKeys.ts';
import { validatingFetch } from './support/contract.ts';
import { ALPHABET, expectedChecksum } from './support/keyFormat.ts';
import { DB_LABEL, ON_POSTGRES } from './support/database.ts';
import { startServer, type TestServer } from './support/server.ts';
import { registeredUser } from './support/users.ts';
import { sleep, waitFor } from './support/wait.ts';

const forge = (random: string): string => `rst_${random}${expectedChecksum(random)}`;
const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const statusOf = (r: { response?: Response }): number => {
  expect(r.response, 'an HTTP response').to.exist;
  return r.response!.status;
};
const INVALID_TOKEN = 'Bearer error="invalid_token"';

describe('API key format', () => {
  it('is rst_ + 36 base62 characters + 6 base62 characters of CRC32, with an rst_ + 8 prefix', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const key = newApiKey();
      expect(key.raw)
        .to.have.length(46)
        .and.match(/^rst_[0-9A-Za-z]{42}$/);
      expect(key.raw.slice(40)).to.equal(expectedChecksum(key.raw.slice(4, 40)));
      expect(key.prefix).to.equal(key.raw.slice(0, 12));
      expect(key.hash).to.equal(sha256(key.raw));
      expect(isWellFormedApiKey(key.raw)).to.equal(true);
      seen.add(key.raw);
    }
    expect(seen.size).to.equal(200);
  });

  it('draws every base62 character equally often (no modulo bias)', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 2000; i++)
      for (const ch of newApiKey().raw.slice(4, 40)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect(counts.size).to.equal(62);
    // 72 000 draws: ≈1161 each, σ≈34. `byte % 62` over all 256 byte values would give 0–7 about
    // 21% more than the mean; ±12% is 4σ for a fair generator.
    const mean = 72_000 / 62;
    for (const [ch, n] of counts) expect(Math.abs(n - mean) / mean, `frequency of ${ch}`).to.be.below(0.12);
  });

  it('accepts any random part with its checksum, and refuses any one-character change', () => {
    const base62 = fc.string({ unit: fc.constantFrom(...ALPHABET), minLength: 36, maxLength: 36 });
    fc.assert(
      fc.property(base62, fc.nat(41), fc.constantFrom(...ALPHABET), (random, at, ch) => {
        const key = forge(random);
        expect(isWellFormedApiKey(key)).to.equal(true);
        const changed = key.slice(0, 4 + at) + ch + key.slice(5 + at);
        // CRC32 catches every error burst shorter than 33 bits, so one character never slips by.
        expect(isWellFormedApiKey(changed)).to.equal(changed === key);
      }),
      { numRuns: 500 },
    );
  });

  it('matches the example key of openapi.yaml', () => {
    expect(isWellFormedApiKey('rst_e1aDLp1SGozMVT0OUmtSJDzd4DZLjJGtn7Kd20AAV7')).to.equal(true);
  });
});

describe(`API keys (${DB_LABEL})`, () => {
  let server: TestServer;
  /** Every raw key the server handed out, for the "never stored, never logged" check at the end. */
  const issued: string[] = [];

  // One client per header form, each sending only that header.
  const bearer = (credential: string): Client =>
    createClient({ baseUrl: server.url, fetch: validatingFetch, headers: { Authorization: `Bearer ${credential}` } });
  const xApiKey = (credential: string): Client =>
    createClient({ baseUrl: server.url, fetch: validatingFetch, headers: { 'X-API-Key': credential } });
  const headerForms: [string, (credential: string) => Client][] = [
    ['Authorization: Bearer', bearer],
    ['X-API-Key', xApiKey],
  ];

  async function mint(token: string, name = 'test key') {
    const { data } = await createApiKey({ client: bearer(token), body: { name }, throwOnError: true });
    issued.push(data.raw_key);
    return data;
  }
  const activeKeys = async (token: string) =>
    (await listApiKeys({ client: bearer(token), throwOnError: true })).data.items;

  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  it('creates a key shown once, in the documented format, with Cache-Control: no-store', async () => {
    const user = await registeredUser(server, 'key');
    const result = await createApiKey({ client: bearer(user.token), body: { name: 'laptop CLI' } });
    expect(statusOf(result)).to.equal(201);
    expect(result.response!.headers.get('cache-control')).to.equal('no-store');
    const key = result.data!;
    issued.push(key.raw_key);
    expect(key.name).to.equal('laptop CLI');
    expect(key.raw_key)
      .to.have.length(46)
      .and.match(/^rst_[0-9A-Za-z]{42}$/);
    expect(key.raw_key.slice(40)).to.equal(expectedChecksum(key.raw_key.slice(4, 40)));
    expect(key.prefix).to.equal(key.raw_key.slice(0, 12));
    expect(new Date(key.created_at).getTime()).to.be.closeTo(Date.now(), 60_000);

    const { data: list, response } = await listApiKeys({ client: bearer(user.token), throwOnError: true });
    expect(response.status).to.equal(200);
    expect(list.items).to.have.length(1);
    expect(list.items[0]).to.deep.equal({
      id: key.id,
      name: 'laptop CLI',
      prefix: key.prefix,
      created_at: key.created_at,
      last_used_at: null,
      scopes: [],
      expires_at: null,
    });
    expect(key).to.include({ expires_at: null });
    expect(key.scopes).to.deep.equal([]);
    const listed = JSON.stringify(list);
    expect(listed).not.to.include(key.raw_key.slice(4, 40));
    expect(listed).not.to.include(sha256(key.raw_key));
  });

  it('runs the whole lifecycle: a key works in both header forms until revoked, then fails at once', async () => {
    const user = await registeredUser(server, 'life');
    const key = await mint(user.token);

    for (const [form, client] of headerForms) {
      const account = await getAccount({ client: client(key.raw_key) });
      expect(statusOf(account), form).to.equal(200);
      expect(account.data).to.include({ id: user.id, username: user.username });
      // Owner auth reaches unlink too: this account has no Google link to remove.
      const unlink = await unlinkGoogle({ client: client(key.raw_key) });
      expect(statusOf(unlink), form).to.equal(409);
      expect(unlink.error).to.include({ code: 'google_not_linked' });
    }

    const revoked = await revokeApiKey({ client: bearer(user.token), path: { key_id: key.id } });
    expect(statusOf(revoked)).to.equal(204);

    for (const [form, client] of headerForms) {
      const refused = await getAccount({ client: client(key.raw_key) });
      expect(statusOf(refused), form).to.equal(401);
      expect(refused.error).to.include({ code: 'unauthorized' });
      expect(refused.response!.headers.get('www-authenticate')).to.equal(INVALID_TOKEN);
    }
    expect(await activeKeys(user.token)).to.deep.equal([]);
    const again = await revokeApiKey({ client: bearer(user.token), path: { key_id: key.id } });
    expect(statusOf(again)).to.equal(404);
    expect(again.error).to.include({ code: 'api_key_not_found' });
    // The session that managed the key is untouched.
    expect(statusOf(await getAccount({ client: bearer(user.token) }))).to.equal(200);
  });

  it('lists active keys only, newest first', async () => {
    const user = await registeredUser(server, 'list');
    const first = await mint(user.token, 'first');
    const second = await mint(user.token, 'second');
    const third = await mint(user.token, 'third');
    await revokeApiKey({ client: bearer(user.token), path: { key_id: second.id }, throwOnError: true });
    const items = await activeKeys(user.token);
    expect(items.map((k) => k.id)).to.deep.equal([third.id, first.id]);
    expect(items.map((k) => k.name)).to.deep.equal(['third', 'first']);
  });

  it('keeps last_used_at null until the key is used, then records the use without writing on every request', async () => {
    const user = await registeredUser(server, 'used');
    const key = await mint(user.token);
    const lastUsed = async () => (await activeKeys(user.token)).find((k) => k.id === key.id)!.last_used_at;
    expect(await lastUsed()).to.equal(null);

    await getAccount({ client: xApiKey(key.raw_key), throwOnError: true });
    // The write is off the response path: give it a moment to land.
    const recorded = await waitFor(lastUsed, 'last_used_at after use', 3000);
    expect(recorded, 'last_used_at after use').to.be.a('string');
    expect(new Date(recorded!).getTime()).to.be.closeTo(Date.now(), 60_000);

    await getAccount({ client: bearer(key.raw_key), throwOnError: true });
    await getAccount({ client: xApiKey(key.raw_key), throwOnError: true });
    await sleep(300);
    expect(await lastUsed(), 'unchanged within the minute').to.equal(recorded);
  });

  it('refuses an API key on every key-management operation (403 jwt_required), in both header forms', async () => {
    const user = await registeredUser(server, 'jwtonly');
    const key = await mint(user.token);
    for (const [form, client] of headerForms) {
      const created = await createApiKey({ client: client(key.raw_key), body: { name: 'from a key' } });
      expect(statusOf(created), `${form} create`).to.equal(403);
      expect(created.error).to.include({ code: 'jwt_required' });
      const listed = await listApiKeys({ client: client(key.raw_key) });
      expect(statusOf(listed), `${form} list`).to.equal(403);
      expect(listed.error).to.include({ code: 'jwt_required' });
      const revoked = await revokeApiKey({ client: client(key.raw_key), path: { key_id: key.id } });
      expect(statusOf(revoked), `${form} revoke`).to.equal(403);
      expect(revoked.error).to.include({ code: 'jwt_required' });
    }
    expect((await activeKeys(user.token)).map((k) => k.id)).to.deep.equal([key.id]);
  });

  it("keeps accounts apart: A cannot see or revoke B's key, and B's key keeps working", async () => {
    const a = await registeredUser(server, 'alice');
    const b = await registeredUser(server, 'bob');
    const keyA = await mint(a.token);
    const keyB = await mint(b.token);

    expect((await activeKeys(a.token)).map((k) => k.id)).to.deep.equal([keyA.id]);
    const byJwt = await revokeApiKey({ client: bearer(a.token), path: { key_id: keyB.id } });
    expect(statusOf(byJwt)).to.equal(404);
    expect(byJwt.error).to.include({ code: 'api_key_not_found' });
    const byKey = await revokeApiKey({ client: bearer(keyA.raw_key), path: { key_id: keyB.id } });
    expect(statusOf(byKey)).to.equal(403);

    const asB = await getAccount({ client: xApiKey(keyB.raw_key), throwOnError: true });
    expect(asB.data.id).to.equal(b.id);
    const asA = await getAccount({ client: xApiKey(keyA.raw_key), throwOnError: true });
    expect(asA.data.id).to.equal(a.id);
    expect((await activeKeys(b.token)).map((k) => k.id)).to.deep.equal([keyB.id]);
  });

  it('answers 400 for a key_id that is not a UUID, and 404 for an unknown one', async () => {
    const user = await registeredUser(server, 'uuid');
    const bad = await revokeApiKey({ client: bearer(user.token), path: { key_id: 'not-a-uuid' } });
    expect(statusOf(bad)).to.equal(400);
    expect(bad.error).to.include({ code: 'validation_failed' });
    const unknown = await revokeApiKey({
      client: bearer(user.token),
      path: { key_id: '6f1c1d8e-2b7a-4c1e-9f3a-1d2e3f4a5b6c' },
    });
    expect(statusOf(unknown)).to.equal(404);
    expect(unknown.error).to.include({ code: 'api_key_not_found' });
  });

  it('refuses a name that is empty, too long, or sent with an unknown field (400)', async () => {
    const user = await registeredUser(server, 'name');
    for (const body of [{ name: '' }, { name: 'x'.repeat(65) }, { name: 'ok', scope: 'admin' }]) {
      const r = await createApiKey({ client: bearer(user.token), body: body as { name: string } });
      expect(statusOf(r), JSON.stringify(body)).to.equal(400);
      expect(r.error).to.include({ code: 'validation_failed' });
    }
    expect(await activeKeys(user.token)).to.deep.equal([]);
  });

  it('holds the limit of 25 active keys under concurrency (409 api_key_limit_reached); revoking frees a slot', async () => {
    const user = await registeredUser(server, 'limit');
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => createApiKey({ client: bearer(user.token), body: { name: `key ${i}` } })),
    );
    for (const r of results) if (r.data) issued.push(r.data.raw_key);
    const statuses = results.map(statusOf);
    expect(statuses.filter((s) => s === 201)).to.have.length(25);
    expect(statuses.filter((s) => s === 409)).to.have.length(5);
    for (const r of results.filter((r) => r.error)) expect(r.error).to.include({ code: 'api_key_limit_reached' });

    const items = await activeKeys(user.token);
    expect(items).to.have.length(25);
    const twentySixth = await createApiKey({ client: bearer(user.token), body: { name: 'one too many' } });
    expect(statusOf(twentySixth)).to.equal(409);
    expect(twentySixth.error).to.include({ code: 'api_key_limit_reached' });

    await revokeApiKey({ client: bearer(user.token), path: { key_id: items[0]!.id }, throwOnError: true });
    await mint(user.token, 'after a revocation');
    expect(await activeKeys(user.token)).to.have.length(25);
  });

  it('lets exactly one of 20 concurrent revocations of one key succeed', async () => {
    const user = await registeredUser(server, 'race');
    const key = await mint(user.token);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => revokeApiKey({ client: bearer(user.token), path: { key_id: key.id } })),
    );
    const statuses = results.map(statusOf);
    expect(statuses.filter((s) => s === 204)).to.have.length(1);
    expect(statuses.filter((s) => s === 404)).to.have.length(19);
    for (const r of results.filter((r) => r.error)) expect(r.error).to.include({ code: 'api_key_not_found' });
    expect(statusOf(await getAccount({ client: bearer(key.raw_key) }))).to.equal(401);
  });

  describe('refused keys (401 with WWW-Authenticate: Bearer error="invalid_token")', () => {
    const real = newApiKey().raw;
    const random = real.slice(4, 40);
    const swap = (s: string, at: number) => s.slice(0, at) + (s[at] === 'A' ? 'B' : 'A') + s.slice(at + 1);
    const cases: [string, () => string][] = [
      ['the bare prefix', () => 'rst_'],
      ['one character too short', () => real.slice(0, -1)],
      ['one character too long', () => `${real}0`],
      ['a character outside base62', () => `rst_${random.slice(0, 35)}-${real.slice(40)}`],
      ['a wrong checksum', () => swap(real, 45)],
      ['a changed random character (checksum no longer matches)', () => swap(real, 10)],
      ['a made-up key with a valid checksum', () => forge(newApiKey().raw.slice(4, 40))],
      ['a key in lower case', () => `rst_${forge(random).slice(4).toLowerCase()}`],
    ];
    for (const [name, make] of cases) {
      it(`refuses ${name}`, async () => {
        const credential = make();
        for (const [form, client] of headerForms) {
          const r = await getAccount({ client: client(credential) });
          expect(statusOf(r), form).to.equal(401);
          expect(r.error).to.include({ code: 'unauthorized' });
          expect(r.response!.headers.get('www-authenticate'), form).to.equal(INVALID_TOKEN);
        }
      });
    }

    it('refuses a JWT sent as X-API-Key', async () => {
      const user = await registeredUser(server, 'xjwt');
      const r = await getAccount({ client: xApiKey(user.token) });
      expect(statusOf(r)).to.equal(401);
      expect(r.response!.headers.get('www-authenticate')).to.equal(INVALID_TOKEN);
    });

    if (ON_POSTGRES) {
      it('refuses a malformed key or a bad checksum without a database lookup', async () => {
        // Hold an exclusive lock on api_keys: any lookup would wait behind it.
        const locker = new pg.Client({ connectionString: server.database.url });
        await locker.connect();
        try {
          await locker.query('begin');
          await locker.query('lock table api_keys in access exclusive mode');
          const lookedUp = getAccount({ client: bearer(forge(newApiKey().raw.slice(4, 40))) });
          let lookupAnswered = false;
          void lookedUp.then(() => (lookupAnswered = true));
          for (const credential of [swap(real, 45), swap(real, 10), 'rst_short']) {
            const r = await getAccount({ client: bearer(credential) });
            expect(statusOf(r)).to.equal(401);
          }
          await sleep(300);
          expect(lookupAnswered, 'a well-formed key waits for the database').to.equal(false);
          await locker.query('commit');
          expect(statusOf(await lookedUp)).to.equal(401);
        } finally {
          await locker.end();
        }
      });
    }
  });

  // A child suite runs after every test of its parent, and this one after its sibling: it must be
  // last, because on PGlite reading the database stops the server.
  describe('after every other test', () => {
    it('never stored or logged a raw key: the database holds only their SHA-256', async () => {
      expect(issued.length).to.be.above(25);
      const output = server.output();
      const dump = await server.dumpDatabase();
      for (const raw of issued) {
        const random = raw.slice(4, 40);
        expect(output, 'server output').not.to.include(random);
        expect(dump, 'database').not.to.include(random);
        expect(dump, 'database').to.include(sha256(raw));
      }
    });
  });
});
