// The credential cache (lib/credentialCache.ts) must never accept what the database would refuse.
// Repeated reads of one credential are answered from memory; every change that could refuse the
// credential or change the account view reaches every instance through the database's
// LISTEN/NOTIFY: on the instance that made it before it answers, on the others within 100 ms.
// A listener that is gone means the cache is bypassed until it is back.
import http from 'node:http';
import { expect } from 'chai';
import {
  createApiKey,
  deleteAccount,
  forgotPassword,
  getAccount,
  logout,
  resetPassword,
  revokeApiKey,
} from '../generated/sdk.gen.ts';
import { DB_LABEL, ON_POSTGRES } from './support/database.ts';
import { tokenFrom } from './support/mail.ts';
import { METRICS_TOKEN, scrape } from './support/metrics.ts';
import { ownerRead as read, refusedWithin } from './support/requests.ts';
import { startServer, type TestServer, twoInstances } from './support/server.ts';
import { startTcpProxy } from './support/tcpProxy.ts';
import { registeredUser } from './support/users.ts';
import { sleep, waitFor } from './support/wait.ts';

const ENV = { METRICS_TOKEN };

const cacheMetrics = async (server: TestServer) => {
  const m = await scrape(server);
  return {
    hits: m.get('rst_credential_cache_hits_total') ?? Number.NaN,
    misses: m.get('rst_credential_cache_misses_total') ?? Number.NaN,
    evictions: m.get('rst_credential_cache_evictions_total') ?? Number.NaN,
    entries: m.get('rst_credential_cache_entries') ?? Number.NaN,
    up: m.get('rst_credential_cache_listener_up') ?? Number.NaN,
  };
};

async function withKey(server: TestServer, prefix: string) {
  const user = await registeredUser(server, prefix);
  const key = await createApiKey({ client: server.as(user.token), body: { name: 'cache' }, throwOnError: true });
  return { ...user, key: key.data.raw_key, keyId: key.data.id };
}

describe(`credential cache, one instance (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: ENV });
  });
  after(async () => {
    await server?.stop();
  });

  it('answers repeated reads of a key and a JWT from memory, and says so in /metrics', async () => {
    const user = await withKey(server, 'chit');
    const before = await cacheMetrics(server);
    expect(before.up, 'listener up').to.equal(1);
    for (let i = 0; i < 5; i++) {
      expect(await read(server, user.key)).to.equal(200);
      expect(await read(server, user.token)).to.equal(200);
    }
    const after = await cacheMetrics(server);
    // The key's first read asks the database; the JWT was cached by the key creation's own check.
    expect(after.misses - before.misses, 'lookups').to.be.at.most(2);
    expect(after.hits - before.hits, 'hits').to.be.at.least(8);
    expect(after.entries).to.be.at.least(2);
  });

  it('refuses a revoked key, a logged-out JWT and a deleted account on the very next request', async () => {
    const user = await withKey(server, 'clocal');
    expect(await read(server, user.key)).to.equal(200);
    expect(await read(server, user.key)).to.equal(200);
    await revokeApiKey({ client: server.as(user.token), path: { key_id: user.keyId }, throwOnError: true });
    expect(await read(server, user.key)).to.equal(401);

    expect(await read(server, user.token)).to.equal(200);
    await logout({ client: server.as(user.token), throwOnError: true });
    expect(await read(server, user.token)).to.equal(401);

    const other = await withKey(server, 'cdel');
    expect(await read(server, other.key)).to.equal(200);
    expect(await read(server, other.token)).to.equal(200);
    await deleteAccount({ client: server.as(other.token), body: { password: other.password }, throwOnError: true });
    expect(await read(server, other.key)).to.equal(401);
    expect(await read(server, other.token)).to.equal(401);
  });

  it('refuses the JWTs and keys a password reset ended on the very next request', async () => {
    const user = await withKey(server, 'creset');
    expect(await read(server, user.key)).to.equal(200);
    expect(await read(server, user.token)).to.equal(200);
    await forgotPassword({ client: server.client, body: { email: user.email }, throwOnError: true });
    const token = tokenFrom(await server.consoleMail(user.email, 2));
    await resetPassword({
      client: server.client,
      body: { token, new_password: `renewed ${user.password}` },
      throwOnError: true,
    });
    expect(await read(server, user.token)).to.equal(401);
    expect(await read(server, user.key)).to.equal(401);
  });

  it('keeps nothing it refused: a key that failed is looked up again, not remembered', async () => {
    const before = await cacheMetrics(server);
    const unknown = `rst_${'A'.repeat(43)}`;
    for (let i = 0; i < 3; i++) await read(server, unknown);
    const after = await cacheMetrics(server);
    expect(after.hits - before.hits).to.equal(0);
  });
});

describe(`credential cache age ceiling (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { ...ENV, CREDENTIAL_CACHE_TTL_SECONDS: '1' } });
  });
  after(async () => {
    await server?.stop();
  });

  it('asks the database again once an entry is older than CREDENTIAL_CACHE_TTL_SECONDS', async () => {
    const user = await withKey(server, 'cttl');
    expect(await read(server, user.key)).to.equal(200);
    const first = await cacheMetrics(server);
    expect(await read(server, user.key)).to.equal(200);
    const second = await cacheMetrics(server);
    expect(second.hits - first.hits, 'a hit within the second').to.equal(1);
    await sleep(1100);
    expect(await read(server, user.key)).to.equal(200);
    const third = await cacheMetrics(server);
    expect(third.misses - second.misses, 'looked up again').to.equal(1);
    expect(third.hits - second.hits).to.equal(0);
  });
});

describe(`credential cache off (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { ...ENV, CREDENTIAL_CACHE: 'off' } });
  });
  after(async () => {
    await server?.stop();
  });

  it('asks the database on every read with CREDENTIAL_CACHE=off', async () => {
    const user = await withKey(server, 'coff');
    const before = await cacheMetrics(server);
    for (let i = 0; i < 3; i++) expect(await read(server, user.key)).to.equal(200);
    const after = await cacheMetrics(server);
    expect(after.hits).to.equal(0);
    expect(after.up).to.equal(0);
    expect(after.entries).to.equal(0);
    expect(before.misses).to.equal(0); // nothing is counted when there is no cache
  });
});

if (ON_POSTGRES) {
  describe('credential cache across two instances (PostgreSQL)', () => {
    let a: TestServer;
    let b: TestServer;
    twoInstances({ env: ENV }, (first, second) => {
      a = first;
      b = second;
    });

    /** Reads on b until b holds the credential in its cache (a hit counted). */
    async function cachedOn(server: TestServer, credential: string) {
      expect(await read(server, credential)).to.equal(200);
      const before = (await cacheMetrics(server)).hits;
      expect(await read(server, credential)).to.equal(200);
      expect((await cacheMetrics(server)).hits, 'answered from the cache').to.be.above(before);
    }

    it('a key revoked on A is refused by B within 100 ms', async () => {
      const user = await withKey(a, 'c2key');
      await cachedOn(b, user.key);
      await revokeApiKey({ client: a.as(user.token), path: { key_id: user.keyId }, throwOnError: true });
      await refusedWithin(b, user.key);
    });

    it('a session ended on A is refused by B within 100 ms', async () => {
      const user = await withKey(a, 'c2jwt');
      await cachedOn(b, user.token);
      await logout({ client: a.as(user.token), throwOnError: true });
      await refusedWithin(b, user.token);
    });

    it("a password reset on A: B refuses the account's old JWT and keys within 100 ms", async () => {
      const user = await withKey(a, 'c2reset');
      await cachedOn(b, user.token);
      await cachedOn(b, user.key);
      await forgotPassword({ client: a.client, body: { email: user.email }, throwOnError: true });
      const token = tokenFrom(await a.consoleMail(user.email, 2));
      await resetPassword({
        client: a.client,
        body: { token, new_password: `renewed ${user.password}` },
        throwOnError: true,
      });
      await refusedWithin(b, user.token);
      await refusedWithin(b, user.key);
    });

    it('an account deleted on A is refused by B within 100 ms', async () => {
      const user = await withKey(a, 'c2del');
      await cachedOn(b, user.key);
      await cachedOn(b, user.token);
      await deleteAccount({ client: a.as(user.token), body: { password: user.password }, throwOnError: true });
      await refusedWithin(b, user.key);
      await refusedWithin(b, user.token);
    });

    it('a plan changed by hand in SQL shows on both instances within 100 ms', async () => {
      const user = await withKey(a, 'c2plan');
      await cachedOn(a, user.key);
      await cachedOn(b, user.key);
      await a.sql(`update accounts set plan = 'enterprise', plan_source = 'manual' where id = $1`, [user.id]);
      const changed = performance.now();
      for (const server of [a, b]) {
        await waitFor(
          async () => {
            const { data } = await getAccount({ client: server.as(user.key), throwOnError: true });
            return data.plan === 'enterprise';
          },
          'the new plan',
          100 - Math.min(90, performance.now() - changed),
        );
      }
    });

    it('an expiry moved into the past by hand is refused at once by both', async () => {
      const user = await withKey(a, 'c2exp');
      await cachedOn(b, user.key);
      await a.sql(`update api_keys set expires_at = now() - interval '1 second' where id = $1`, [user.keyId]);
      await refusedWithin(b, user.key);
      await refusedWithin(a, user.key);
    });

    it('with its listener terminated, B bypasses its cache (refusing what was revoked meanwhile), then listens again', async function () {
      this.timeout(30_000);
      const user = await withKey(a, 'c2term');
      const kept = await withKey(a, 'c2kept');
      await cachedOn(b, user.key);
      await cachedOn(b, kept.key);
      const listening = () => b.logs().filter((l) => l.msg === 'credential cache listening').length;
      const before = listening();
      // Both instances' listeners: whichever notice first, neither may keep serving from memory.
      await a.sql(
        `select pg_terminate_backend(pid) from pg_stat_activity
         where datname = current_database() and application_name = 'rst-auth credential listener'`,
      );
      await b.waitForLog((l) => l.msg === 'credential cache bypassed until the listener is back', 5000);
      await revokeApiKey({ client: a.as(user.token), path: { key_id: user.keyId }, throwOnError: true });
      expect(await read(b, user.key), 'revoked while B was not listening').to.equal(401);
      expect(await read(b, kept.key)).to.equal(200);
      // Back by itself; what it held before is gone (it may have missed changes), and it caches again.
      await waitFor(() => listening() > before, 'B listening again', 15_000);
      expect((await cacheMetrics(b)).up).to.equal(1);
      await cachedOn(b, kept.key);
      expect(await read(b, user.key)).to.equal(401);
    });

    it('records the use of a key answered from memory (last_used_at within a minute)', async function () {
      this.timeout(20_000);
      const user = await withKey(a, 'c2used');
      const lastUsed = async () =>
        (await a.sql<{ t: Date | null }>('select last_used_at as t from api_keys where id = $1', [user.keyId]))[0]!.t;
      expect(await read(a, user.key)).to.equal(200);
      await waitFor(lastUsed, 'the first use recorded', 5000);
      // Used 29 s ago by the database's measure: not due yet. Touching the account (a change no
      // one can see) drops the entry, so the next read looks the key up and caches it again.
      await a.sql(`update api_keys set last_used_at = now() - interval '29 seconds' where id = $1`, [user.keyId]);
      const evicted = (await cacheMetrics(a)).evictions;
      await a.sql('update accounts set plan = plan where id = $1', [user.id]);
      await waitFor(async () => (await cacheMetrics(a)).evictions > evicted, 'the entry dropped', 5000);
      expect(await read(a, user.key)).to.equal(200);
      await sleep(1500);
      // Now over 30 s: a read answered from memory marks the use, and the batch writes it.
      const hits = (await cacheMetrics(a)).hits;
      const before = Date.now();
      expect(await read(a, user.key)).to.equal(200);
      expect((await cacheMetrics(a)).hits).to.be.above(hits);
      await waitFor(async () => (await lastUsed())!.getTime() >= before - 1000, 'the use recorded', 5000);
    });

    it('a silent listener: a change made here is still refused on the next request, and the cache waits for the listener', async function () {
      this.timeout(30_000);
      // Only the listener's connection goes through the proxy; the pool dials PostgreSQL as usual.
      const target = new URL(a.database.directUrl!);
      const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
      const listenUrl = new URL(a.database.directUrl!);
      listenUrl.host = proxy.address;
      const c = await startServer({ shareDatabaseWith: a, env: { ...ENV, DATABASE_LISTEN_URL: listenUrl.href } });
      try {
        const user = await withKey(c, 'csilent');
        await cachedOn(c, user.key);
        // A partition: the listener hears nothing, and nothing tells it so.
        proxy.cut('blackhole');
        const started = performance.now();
        await revokeApiKey({ client: c.as(user.token), path: { key_id: user.keyId }, throwOnError: true });
        // The revocation waited for a heartbeat that never came, gave up on the cache, then answered.
        expect(performance.now() - started, 'the revocation waited for its heartbeat').to.be.above(1000);
        expect(await read(c, user.key)).to.equal(401);
        expect((await cacheMetrics(c)).up).to.equal(0);
        proxy.restore();
        await waitFor(async () => (await cacheMetrics(c)).up === 1, 'listening again', 15_000);
        const other = await withKey(a, 'csilent2');
        await cachedOn(c, other.key);
      } finally {
        await c.stop();
        await proxy.close();
      }
    });

    it('a listener that cannot listen leaves the cache bypassed, and reads still work', async () => {
      const deaf = await startServer({
        shareDatabaseWith: a,
        // A port nothing listens on: the listener never comes up.
        env: { ...ENV, DATABASE_LISTEN_URL: 'postgres://postgres@127.0.0.1:1/none' },
      });
      try {
        const user = await withKey(deaf, 'cdeaf');
        for (let i = 0; i < 3; i++) expect(await read(deaf, user.key)).to.equal(200);
        const m = await cacheMetrics(deaf);
        expect(m.up).to.equal(0);
        expect(m.hits).to.equal(0);
        expect(m.entries).to.equal(0);
        await revokeApiKey({ client: a.as(user.token), path: { key_id: user.keyId }, throwOnError: true });
        expect(await read(deaf, user.key)).to.equal(401);
        expect(
          deaf.logs().some((l) => l.msg === 'credential cache bypassed: cannot listen for changes; retrying'),
        ).to.equal(true);
      } finally {
        await deaf.stop();
      }
    });
  });

  describe('credential cache without its triggers (PostgreSQL)', () => {
    let server: TestServer;
    before(async () => {
      server = await startServer({ env: ENV });
    });
    after(async () => {
      await server?.stop();
    });

    it('stops serving from memory when a trigger is dropped under it, and resumes once it is back', async function () {
      this.timeout(30_000);
      const user = await withKey(server, 'ctrig');
      expect(await read(server, user.key)).to.equal(200);
      expect(await read(server, user.key)).to.equal(200);
      // As a migration rolled back under a running instance would leave it: changes to keys
      // would no longer be published.
      await server.sql('drop trigger rst_credentials_api_keys on api_keys');
      await waitFor(async () => (await cacheMetrics(server)).up === 0, 'the cache bypassed', 10_000);
      await server.sql('update api_keys set revoked_at = now() where id = $1', [user.keyId]);
      expect(await read(server, user.key), 'revoked with no trigger to say so').to.equal(401);
      await server.sql(
        `create trigger rst_credentials_api_keys after update of account_id, key_hash, revoked_at, expires_at, scopes
         or delete on api_keys for each row execute function rst_notify_credentials()`,
      );
      await waitFor(async () => (await cacheMetrics(server)).up === 1, 'listening again', 20_000);
    });
  });

  describe('credential cache with WEB_CONCURRENCY=2 (node:cluster, PostgreSQL)', () => {
    let server: TestServer;
    before(async () => {
      server = await startServer({ env: { ...ENV, WEB_CONCURRENCY: '2' } });
    });
    after(async () => {
      await server?.stop();
    });

    /** One read on a connection of its own, so the kernel hands each to a worker afresh. */
    const freshRead = (credential: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.get(
          `${server.url}/v1/me/account`,
          { agent: false, headers: { Authorization: `Bearer ${credential}`, Connection: 'close' } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode!));
          },
        );
        req.on('error', reject);
      });

    it('keeps both workers coherent: a key revoked through one is refused by both within 100 ms', async () => {
      const user = await withKey(server, 'cwork');
      // Enough fresh connections that both workers have read (and cached) it.
      for (let i = 0; i < 8; i++) expect(await freshRead(user.key)).to.equal(200);
      const m = await cacheMetrics(server);
      expect(m.up, 'both workers listening (the least of them)').to.equal(1);
      await revokeApiKey({ client: server.as(user.token), path: { key_id: user.keyId }, throwOnError: true });
      const revoked = performance.now();
      await sleep(100);
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) statuses.push(await freshRead(user.key));
      expect(statuses, `every read ${Math.round(performance.now() - revoked)} ms after the revocation`).to.deep.equal(
        new Array(8).fill(401),
      );
    });
  });
}
