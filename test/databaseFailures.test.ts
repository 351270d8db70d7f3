// Every way PostgreSQL can become unusable is a 503, whatever its reason, caused here for real on
// the server's own database and role: connections refused (ALLOW_CONNECTIONS false), the role no
// longer allowed to log in (NOLOGIN), the database gone, no connection slots left, the TCP link
// cut; and, for a query already running, its backend terminated, its link cut, a statement
// timeout and a lock timeout. Each time the request answers 503 problem+json with Retry-After
// (never 500), the process stays up, /healthz says 200, /readyz 503 while the database cannot be
// reached, and service resumes by itself within 30 s of the cause going away.
//
// The server connects as a role of the test's own (the owner of its fresh database), through a
// TCP proxy of the test's own, so nothing here can lock out the postgres role the harness uses.
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type pg from 'pg';
import { healthz, login, readyz } from '../generated/sdk.gen.ts';
import { admin, directSession, ON_POSTGRES } from './support/database.ts';
import { startServer, type TestServer } from './support/server.ts';
import { startTcpProxy, type TcpProxy } from './support/tcpProxy.ts';
import { registeredUser } from './support/users.ts';
import { sleep, waitFor } from './support/wait.ts';

/** One statement on DATABASE_URL's own database as the admin (never on the server's database). */
const adminQuery = (sql: string, params: unknown[] = []) => admin((client) => client.query(sql, params as unknown[]));

if (ON_POSTGRES) {
  describe('database failures are 503 (PostgreSQL)', () => {
    const role = `rst_fail_${randomBytes(4).toString('hex')}`;
    let proxy: TcpProxy;
    let server: TestServer;
    let dbName: string;
    let user: Awaited<ReturnType<typeof registeredUser>>;

    before(async function () {
      this.timeout(60_000);
      await adminQuery(`create role ${role} login`);
      // As the README asks of production: statements outside a transaction are bounded by the
      // role's own setting (nothing is sent as session state, so it holds behind a pooler too).
      await adminQuery(`alter role ${role} set statement_timeout = '5s'`);
      // PostgreSQL's own reasons, met on a direct link: behind a pooler (CI's third run) the test's
      // role is no user PgBouncer knows, and the pooler's own outages, on both sides of it, are
      // outage.test.ts's.
      const base = new URL(process.env.TEST_DIRECT_DATABASE_URL || process.env.DATABASE_URL!);
      proxy = await startTcpProxy({ host: base.hostname, port: Number(base.port || 5432) });
      server = await startServer({ role, connectThrough: proxy.address });
      dbName = new URL(server.database.url!).pathname.slice(1);
      user = await registeredUser(server, 'fail');
    });
    after(async () => {
      await server?.stop();
      await proxy?.close();
      await adminQuery(`drop role if exists ${role}`).catch(() => {});
    });

    /** Ends every session on the server's database (the server's pool and the harness's alike). */
    const terminateAll = () =>
      adminQuery(
        `select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`,
        [dbName],
      );

    const signIn = async () => {
      const started = performance.now();
      const { data, error, response } = await login({
        client: server.client,
        body: { username: user.username, password: user.password },
      });
      return {
        status: response!.status,
        code: (error as { code?: string } | undefined)?.code,
        retryAfter: response!.headers.get('retry-after'),
        type: response!.headers.get('content-type'),
        token: data?.access_token,
        ms: performance.now() - started,
      };
    };

    const expect503 = (r: Awaited<ReturnType<typeof signIn>>, what: string) => {
      expect(r.status, `${what}: ${JSON.stringify(r)}`).to.equal(503);
      expect(r.code).to.equal('service_unavailable');
      expect(r.type).to.match(/^application\/problem\+json/);
      expect(Number(r.retryAfter)).to.be.at.least(1);
    };

    const expectAliveAndUnready = async () => {
      expect((await healthz({ client: server.client })).response!.status, '/healthz').to.equal(200);
      const ready = await readyz({ client: server.client });
      expect(ready.response!.status, '/readyz').to.equal(503);
      expect(ready.error).to.include({ code: 'service_unavailable' });
      expect(server.child.exitCode, 'the server is still running').to.equal(null);
    };

    /** Back to normal by itself within 30 s of the cause going away: ready, and signing in works. */
    const expectRecovery = async () => {
      const since = Date.now();
      await waitFor(async () => (await readyz({ client: server.client })).response!.status === 200, 'ready', 30_000);
      await waitFor(async () => (await signIn()).status === 200, 'signing in again', 30_000 - (Date.now() - since));
      expect(Date.now() - since, 'recovered within 30 s').to.be.below(30_000);
      expect(server.child.exitCode).to.equal(null);
      expect(server.logs().some((l) => l.status === 500)).to.equal(false);
    };

    /** Retries an ALTER DATABASE that needs the database empty, while terminated sessions wind down. */
    const whenEmpty = async (sql: string) => {
      for (let i = 0; ; i++) {
        await terminateAll();
        try {
          return await adminQuery(sql);
        } catch (err) {
          if (i >= 40 || (err as { code?: string }).code !== '55006') throw err;
          await sleep(50);
        }
      }
    };

    const unreachable: { name: string; cause: () => Promise<unknown>; cure: () => Promise<unknown> }[] = [
      {
        name: 'the database refuses new connections (ALLOW_CONNECTIONS false: 55000 at connect)',
        cause: async () => {
          await adminQuery(`alter database ${dbName} allow_connections false`);
          await terminateAll();
        },
        cure: () => adminQuery(`alter database ${dbName} allow_connections true`),
      },
      {
        name: 'the role may no longer log in (NOLOGIN: 28000 at connect)',
        cause: async () => {
          await adminQuery(`alter role ${role} nologin`);
          await terminateAll();
        },
        cure: () => adminQuery(`alter role ${role} login`),
      },
      {
        name: 'the database does not exist (renamed away: 3D000 at connect)',
        cause: () => whenEmpty(`alter database ${dbName} rename to ${dbName}_away`),
        cure: () => adminQuery(`alter database ${dbName}_away rename to ${dbName}`),
      },
      {
        name: 'no connection slot is left for the role (CONNECTION LIMIT 0: 53300 at connect)',
        cause: async () => {
          await adminQuery(`alter role ${role} connection limit 0`);
          await terminateAll();
        },
        cure: () => adminQuery(`alter role ${role} connection limit -1`),
      },
      {
        name: 'the TCP connection is cut (connections reset, new ones refused)',
        cause: async () => proxy.cut('reset'),
        cure: async () => proxy.restore(),
      },
    ];

    for (const { name, cause, cure } of unreachable) {
      it(`answers 503 when ${name}, and recovers`, async function () {
        this.timeout(90_000);
        expect((await signIn()).status, 'signed in before').to.equal(200);
        await cause();
        try {
          for (let i = 0; i < 3; i++) {
            const r = await signIn();
            expect503(r, `attempt ${i + 1}`);
            expect(r.ms, 'a refused connection is answered at once').to.be.below(6000);
          }
          await expectAliveAndUnready();
        } finally {
          await cure();
        }
        await expectRecovery();
      });
    }

    describe('a query already running', () => {
      let holder: pg.Client;
      beforeEach(async () => {
        // A session of the admin's, straight to PostgreSQL, holding the lock the request waits on.
        holder = await directSession(server.database.url!);
        await holder.query('begin');
        await holder.query('lock table accounts in access exclusive mode');
      });
      afterEach(async () => {
        await holder.query('rollback').catch(() => {});
        await holder.end().catch(() => {});
      });

      /** The server's backends waiting on the held lock, once there is one. */
      const waiting = () =>
        waitFor(
          async () => {
            const { rows } = await adminQuery(
              `select pid from pg_stat_activity where datname = $1 and usename = $2 and wait_event_type = 'Lock'`,
              [dbName, role],
            );
            return rows.length > 0 && (rows as { pid: number }[]);
          },
          'the request waiting on the lock',
          10_000,
        );

      it('answers 503 when its backend is terminated (57P01), and recovers', async function () {
        this.timeout(60_000);
        const pending = signIn();
        for (const { pid } of await waiting()) await adminQuery('select pg_terminate_backend($1)', [pid]);
        expect503(await pending, 'terminated mid-query');
        expect(server.child.exitCode).to.equal(null);
        await holder.query('rollback');
        await expectRecovery();
      });

      it('answers 503 when its TCP connection is cut, and recovers', async function () {
        this.timeout(60_000);
        const pending = signIn();
        await waiting();
        proxy.cut('reset');
        try {
          expect503(await pending, 'cut mid-query');
          await expectAliveAndUnready();
        } finally {
          proxy.restore();
        }
        await holder.query('rollback');
        await expectRecovery();
      });

      it('answers 503 when it outlives the statement timeout (57014), and recovers', async function () {
        this.timeout(60_000);
        const r = await signIn();
        expect503(r, 'statement timeout');
        // The server's statement_timeout is 5 s: PostgreSQL cancelled the query, not the client.
        expect(r.ms).to.be.within(4500, 8000);
        await server.waitForLog((l) => (l.err as { errorCode?: string } | undefined)?.errorCode === '57014');
        // The database itself answers: only the locked table is out of reach.
        expect((await readyz({ client: server.client })).response!.status).to.equal(200);
        await holder.query('rollback');
        await expectRecovery();
      });

      it('answers 503 when it outlives a lock timeout (55P03), and recovers', async function () {
        this.timeout(60_000);
        // An operator's lock_timeout on the database, picked up by new sessions only.
        await adminQuery(`alter database ${dbName} set lock_timeout = '300ms'`);
        try {
          await terminateAll();
          // The holder was terminated too: lock again from a fresh session.
          await holder.end().catch(() => {});
          holder = await directSession(server.database.url!);
          await holder.query('begin');
          await holder.query(`set local lock_timeout = 0`);
          await holder.query('lock table accounts in access exclusive mode');
          const r = await signIn();
          expect503(r, 'lock timeout');
          expect(r.ms, 'the lock timeout, not the statement timeout, ended it').to.be.below(4000);
          await server.waitForLog((l) => (l.err as { errorCode?: string } | undefined)?.errorCode === '55P03');
        } finally {
          await adminQuery(`alter database ${dbName} reset lock_timeout`);
        }
        await holder.query('rollback');
        await expectRecovery();
      });
    });
  });
}
