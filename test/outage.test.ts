// Database outages, on PostgreSQL through a TCP proxy of the test's own (test/support/tcpProxy.ts): the
// proxy is cut mid-traffic and restored. Requests must get 503 service_unavailable (with
// Retry-After) quickly, /readyz must say 503, the process must not crash, service must resume by
// itself, and every registration that was acknowledged (201) must be in the database afterwards,
// with its verification email queued. PGlite is embedded (there is no connection to cut), so this
// suite is registered on PostgreSQL only.
//
// Through a pooler (CI's third run) the same suite cuts the link between rst and PgBouncer, and,
// with a PgBouncer of the test's own in front of the proxy, the link between PgBouncer and
// PostgreSQL: both must end in 503 and recover.
import { expect } from 'chai';
import { readyz, register } from '../generated/sdk.gen.ts';
import { ON_POSTGRES, THROUGH_POOLER } from './support/database.ts';
import { startPgBouncer, type PgBouncer } from './support/pgbouncer.ts';
import { startServer, type TestServer } from './support/server.ts';
import { startTcpProxy, type TcpProxy } from './support/tcpProxy.ts';
import { uniqueUser } from './support/users.ts';
import { sleep, waitFor } from './support/wait.ts';

interface Outcome {
  status: number;
  code?: string;
  retryAfter: string | null;
  ms: number;
  id?: string;
  user: ReturnType<typeof uniqueUser>;
}

async function registerOne(server: TestServer): Promise<Outcome> {
  const user = uniqueUser('out');
  const started = performance.now();
  const { data, error, response } = await register({ client: server.client, body: user });
  return {
    status: response!.status,
    code: (error as { code?: string } | undefined)?.code,
    retryAfter: response!.headers.get('retry-after'),
    ms: performance.now() - started,
    id: data?.id,
    user,
  };
}

/** Registrations from `workers` concurrent clients until stop() is called. */
function traffic(server: TestServer, workers = 4) {
  const outcomes: Outcome[] = [];
  let running = true;
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      outcomes.push(await registerOne(server));
      await sleep(10);
    }
  });
  return {
    outcomes,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** The outage tests, with the proxy wherever `topology` puts it between the server and PostgreSQL. */
function outageSuite(title: string, topology: 'server-side' | 'behind-pgbouncer') {
  describe(title, () => {
    let proxy: TcpProxy;
    let pooler: PgBouncer | undefined;
    let server: TestServer;
    before(async () => {
      if (topology === 'server-side') {
        // The server dials the proxy instead of whatever DATABASE_URL names (PostgreSQL, or the pooler).
        const base = new URL(process.env.DATABASE_URL!);
        proxy = await startTcpProxy({ host: base.hostname, port: Number(base.port || 5432) });
        server = await startServer({ connectThrough: proxy.address });
      } else {
        // server → a PgBouncer of the test's own → the proxy → PostgreSQL itself.
        const postgres = new URL(process.env.TEST_DIRECT_DATABASE_URL!);
        proxy = await startTcpProxy({ host: postgres.hostname, port: Number(postgres.port || 5432) });
        pooler = await startPgBouncer(proxy.address);
        server = await startServer({ connectThrough: pooler.address });
      }
    });
    after(async () => {
      await server?.stop();
      await pooler?.stop();
      await proxy?.close();
    });

    it('answers 503 quickly while PostgreSQL is cut off, recovers by itself, and loses no acknowledged registration', async function () {
      this.timeout(60_000);
      const load = traffic(server);
      await waitFor(() => load.outcomes.filter((o) => o.status === 201).length >= 10, 'first registrations', 20_000);

      proxy.cut('reset');
      const cutAt = load.outcomes.length;
      await waitFor(
        () => load.outcomes.slice(cutAt).filter((o) => o.status === 503).length >= 10,
        '503s during the cut',
        15_000,
      );
      const ready = await readyz({ client: server.client });
      expect(ready.response!.status).to.equal(503);
      expect(ready.error).to.include({ code: 'service_unavailable' });
      expect(server.child.exitCode, 'the server is still running').to.equal(null);

      proxy.restore();
      const restoredAt = load.outcomes.length;
      const restoredMs = Date.now();
      await waitFor(
        () => load.outcomes.slice(restoredAt).some((o) => o.status === 201),
        'a registration after the restore',
        15_000,
      );
      const recoveredIn = Date.now() - restoredMs;
      await sleep(300);
      await load.stop();

      const during = load.outcomes.slice(cutAt, restoredAt);
      const unavailable = during.filter((o) => o.status === 503);
      expect(unavailable.length, 'requests refused during the cut').to.be.at.least(10);
      for (const o of unavailable) {
        expect(o.code).to.equal('service_unavailable');
        expect(Number(o.retryAfter)).to.be.at.least(1);
        // Connection refused or reset: no waiting on a timeout.
        expect(o.ms, 'a 503 comes quickly').to.be.below(6000);
      }
      // Nothing but success or 503 — a 500 would already have failed the contract check.
      for (const o of load.outcomes) expect([201, 503], `status of ${o.user.username}`).to.include(o.status);
      expect(recoveredIn, 'recovered without a restart').to.be.below(15_000);
      expect((await readyz({ client: server.client })).response!.status).to.equal(200);
      expect(server.child.exitCode).to.equal(null);

      // Every acknowledged registration is in the real database (queried directly, not through
      // the proxy), with its verification email in the outbox.
      const acknowledged = load.outcomes.filter((o) => o.status === 201);
      const ids = acknowledged.map((o) => o.id!);
      const rows = await server.sql<{ id: string; email: string }>(
        'select id, email from accounts where id = any($1::uuid[])',
        [ids],
      );
      expect(rows.map((r) => r.id).sort()).to.deep.equal([...ids].sort());
      const mails = await server.sql<{ recipient: string }>(
        `select recipient from outbox where recipient = any($1::text[])`,
        [acknowledged.map((o) => o.user.email)],
      );
      expect(new Set(mails.map((m) => m.recipient)).size).to.equal(acknowledged.length);

      // The outage was logged, without the passwords of the requests that failed.
      expect(server.logs().some((l) => l.msg === 'request failed')).to.equal(true);
      const output = server.output();
      for (const o of load.outcomes) expect(output.includes(o.user.password), 'a password in the logs').to.equal(false);
    });

    it('answers 503 within the query timeout during a network partition, and recovers', async function () {
      this.timeout(60_000);
      // A partition (packets dropped, nothing refused) is the slow case: nothing fails until a
      // timeout does — connectionTimeoutMillis for new connections, query_timeout for pooled ones.
      proxy.cut('blackhole');
      try {
        const timed = async <T>(call: () => Promise<T>) => {
          const started = performance.now();
          return { result: await call(), ms: performance.now() - started };
        };
        const [ready, registered] = await Promise.all([
          timed(() => readyz({ client: server.client })),
          timed(() => register({ client: server.client, body: uniqueUser('part') })),
        ]);
        for (const { result, ms } of [ready, registered]) {
          expect(result.response!.status).to.equal(503);
          expect(result.error).to.include({ code: 'service_unavailable' });
          expect(ms, 'bounded by the query timeout').to.be.below(15_000);
        }
      } finally {
        proxy.restore();
      }
      const restoredMs = Date.now();
      await waitFor(
        async () => (await readyz({ client: server.client })).response!.status === 200,
        'ready again',
        20_000,
      );
      const recoveredIn = Date.now() - restoredMs;
      expect(recoveredIn).to.be.below(20_000);
      const { response } = await register({ client: server.client, body: uniqueUser('after') });
      expect(response!.status).to.equal(201);
      expect(server.child.exitCode).to.equal(null);
    });
  });
}

if (ON_POSTGRES) {
  outageSuite(
    THROUGH_POOLER
      ? 'database outage (PostgreSQL through PgBouncer, the link between rst and PgBouncer cut)'
      : 'database outage (PostgreSQL, through a TCP proxy)',
    'server-side',
  );
  if (THROUGH_POOLER)
    outageSuite('database outage (the link between PgBouncer and PostgreSQL cut)', 'behind-pgbouncer');
}
