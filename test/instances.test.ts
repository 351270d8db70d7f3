// Several instances on one PostgreSQL behave as one service: login limits and verification tries
// are counted in the database, a one-time code is used once whichever instance is asked, and each
// outbox email is delivered exactly once although both instances run a delivery worker. And
// WEB_CONCURRENCY=N runs N workers (node:cluster) behind one port.
//
// PGlite is embedded and single-process, so the multi-process suites are registered on
// PostgreSQL only (config.test.ts checks that more than one worker without DATABASE_URL is refused).
import http from 'node:http';
import { expect } from 'chai';
import { getAccount, healthz, login, register, resendVerification, verifyEmail } from '../generated/sdk.gen.ts';
import { ON_POSTGRES } from './support/database.ts';
import { codeFrom, consoleMailsIn } from './support/mail.ts';
import { alive, startServer, type TestServer, twoInstances } from './support/server.ts';
import { uniqueUser } from './support/users.ts';
import { sleep, waitFor } from './support/wait.ts';

/** Console-delivered mails to this address in the output of every given server. */
const mailsTo = (servers: TestServer[], email: string) => servers.flatMap((s) => consoleMailsIn(s.output(), email));

const waitForMails = (servers: TestServer[], email: string, n: number) =>
  waitFor(
    () => {
      const mails = mailsTo(servers, email);
      return mails.length >= n && mails;
    },
    `${n} mail(s) to ${email}`,
    15_000,
  );

/** One GET on a connection of its own, so the kernel hands each to a worker afresh. */
function getFresh(
  url: string,
  requestId: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      url,
      { agent: false, headers: { 'X-Request-Id': requestId, Connection: 'close', ...headers } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.on('error', reject);
  });
}

if (ON_POSTGRES) {
  describe('two instances on one PostgreSQL', () => {
    let a: TestServer;
    let b: TestServer;
    twoInstances({ env: { RATE_LIMIT_LOGIN_IDENTIFIER: '10/900' } }, (first, second) => {
      a = first;
      b = second;
    });

    async function verifiedUser(prefix: string) {
      const user = uniqueUser(prefix);
      await register({ client: a.client, body: user, throwOnError: true });
      const [mail] = await waitForMails([a, b], user.email, 1);
      await verifyEmail({ client: b.client, body: { email: user.email, code: codeFrom(mail!) }, throwOnError: true });
      return user;
    }

    it('share sessions: a JWT from one instance is accepted by the other', async () => {
      const user = await verifiedUser('jwt');
      const session = await login({
        client: a.client,
        body: { username: user.username, password: user.password },
        throwOnError: true,
      });
      const account = await getAccount({ client: b.as(session.data.access_token), throwOnError: true });
      expect(account.data.username).to.equal(user.username);
    });

    it('hold the login limit across instances: 10 failures alternating between them, then 429 on either', async () => {
      const user = await verifiedUser('limit');
      for (let i = 0; i < 10; i++) {
        const { response } = await login({
          client: (i % 2 ? b : a).client,
          body: { username: user.username, password: 'wrong password' },
        });
        expect(response!.status, `failure ${i + 1} on ${i % 2 ? 'b' : 'a'}`).to.equal(401);
      }
      for (const server of [a, b]) {
        const { error, response } = await login({
          client: server.client,
          body: { username: user.username, password: user.password },
        });
        expect(response!.status).to.equal(429);
        expect(error).to.include({ code: 'too_many_requests' });
      }
    });

    it('hold the verification tries across instances: 5 wrong codes alternating, then the right one is dead too', async () => {
      const user = uniqueUser('tries');
      await register({ client: b.client, body: user, throwOnError: true });
      const code = codeFrom((await waitForMails([a, b], user.email, 1))[0]!);
      const wrong = code === '000000' ? '111111' : '000000';
      for (let i = 0; i < 5; i++) {
        const { error, response } = await verifyEmail({
          client: (i % 2 ? b : a).client,
          body: { email: user.email, code: wrong },
        });
        expect(response!.status).to.equal(400);
        expect(error).to.include({ code: 'invalid_code' });
      }
      const { error, response } = await verifyEmail({ client: a.client, body: { email: user.email, code } });
      expect(response!.status).to.equal(400);
      expect(error).to.include({ code: 'invalid_code' });
    });

    it('use a code once: of the same right code sent to both at once, exactly one wins', async () => {
      const user = uniqueUser('once');
      await register({ client: a.client, body: user, throwOnError: true });
      const code = codeFrom((await waitForMails([a, b], user.email, 1))[0]!);
      const results = await Promise.all(
        [a, b, a, b].map((s) => verifyEmail({ client: s.client, body: { email: user.email, code } })),
      );
      expect(results.map((r) => r.response!.status).sort()).to.deep.equal([200, 400, 400, 400]);
    });

    it('deliver each outbox email exactly once although both run a delivery worker', async function () {
      this.timeout(60_000);
      const users = Array.from({ length: 24 }, () => uniqueUser('outbox'));
      await Promise.all(
        users.map((user, i) => register({ client: (i % 2 ? b : a).client, body: user, throwOnError: true })),
      );
      // A resend for a third of them: a job row turned into a second mail by whichever worker.
      const resent = users.filter((_, i) => i % 3 === 0);
      for (const [i, user] of resent.entries())
        await resendVerification({ client: (i % 2 ? a : b).client, body: { email: user.email }, throwOnError: true });
      for (const user of users) await waitForMails([a, b], user.email, resent.includes(user) ? 2 : 1);
      // Two more poll rounds of both workers: a duplicate would show up now.
      await sleep(2500);
      for (const user of users)
        expect(mailsTo([a, b], user.email), user.email).to.have.length(resent.includes(user) ? 2 : 1);
      const rows = await a.sql<{ pending: number; twice: number }>(
        `select count(*) filter (where sent_at is null)::int as pending, count(*) filter (where attempts > 1)::int as twice
         from outbox where recipient = any($1::text[])`,
        [users.map((u) => u.email)],
      );
      expect(rows[0]).to.deep.equal({ pending: 0, twice: 0 });
    });
  });

  describe('WEB_CONCURRENCY=2 (node:cluster, PostgreSQL)', () => {
    let server: TestServer;
    const TOKEN = 'cluster-metrics-token-0123456789';
    before(async () => {
      server = await startServer({ env: { WEB_CONCURRENCY: '2', METRICS_TOKEN: TOKEN } });
    });
    after(async () => {
      await server?.stop();
    });

    /** Workers that said they listen and have not been reported dead. */
    const workerPids = () => {
      const dead = server
        .logs()
        .filter((l) => l.msg === 'worker died; starting another')
        .map((l) => l.workerPid as number);
      return [
        ...new Set(
          server
            .logs()
            .filter((l) => l.msg === 'worker listening')
            .map((l) => l.pid as number),
        ),
      ].filter((pid) => !dead.includes(pid));
    };

    it('starts two workers besides the primary and prints the URL once', async () => {
      // The primary's pino line and its console line are separate writes: wait for the former.
      // Each worker's own line comes from another process, so it may land in the pipe after the
      // primary's: wait for two of them as well.
      await server.waitForLog((l) => l.msg === 'listening');
      await waitFor(() => workerPids().length >= 2, 'two workers listening');
      const pids = workerPids();
      expect(pids).to.have.length(2);
      expect(pids).not.to.include(server.child.pid);
      expect(server.output().match(/rst auth listening on /g)).to.have.length(1);
      const migrated = server.logs().filter((l) => l.msg === 'listening');
      expect(migrated).to.have.length(1);
      expect(migrated[0]!.pid, 'the primary says it is listening, once every worker is').to.equal(server.child.pid);
    });

    it('serves on one port, and connections reach both workers', async () => {
      const ids = Array.from({ length: 24 }, (_, i) => `cluster-${Date.now()}-${i}`);
      for (const id of ids) expect((await getFresh(`${server.url}/healthz`, id)).status).to.equal(200);
      const user = uniqueUser('cluster');
      expect((await register({ client: server.client, body: user })).response!.status).to.equal(201);
      await server.waitForLog((l) => l.msg === 'request' && l.requestId === ids.at(-1));
      const pids = new Set(
        server
          .logs()
          .filter((l) => l.msg === 'request' && ids.includes(l.requestId as string))
          .map((l) => l.pid),
      );
      expect([...pids].sort()).to.deep.equal(workerPids().sort());
    });

    it('answers /metrics for the whole cluster, whichever worker takes the scrape', async () => {
      const before = server.logs().filter((l) => l.msg === 'request' && l.operation === 'healthz').length;
      for (let i = 0; i < 10; i++) await getFresh(`${server.url}/healthz`, `metrics-${i}`);
      await server.waitForLog((l) => l.requestId === 'metrics-9');
      for (let i = 0; i < 4; i++) {
        const res = await getFresh(`${server.url}/metrics`, `scrape-${i}`, { Authorization: `Bearer ${TOKEN}` });
        expect(res.status).to.equal(200);
        const line = res.body
          .split('\n')
          .find((l) => l.startsWith('rst_http_requests_total{operation="healthz",status="200"}'));
        expect(Number(line?.split(' ').pop()), 'healthz requests summed over both workers').to.equal(before + 10);
      }
    });

    it('replaces a worker that dies, and keeps serving', async () => {
      const before = workerPids();
      process.kill(before[0]!, 'SIGKILL');
      await server.waitForLog((l) => l.msg === 'worker died; starting another' && l.workerPid === before[0]);
      await server.waitForLog((l) => l.msg === 'worker listening' && !before.includes(l.pid as number), 15_000);
      for (let i = 0; i < 6; i++) expect((await getFresh(`${server.url}/healthz`, `after-${i}`)).status).to.equal(200);
      expect((await healthz({ client: server.client })).response!.status).to.equal(200);
    });

    it('stops every worker on SIGTERM to the primary and exits 0', async function () {
      this.timeout(30_000);
      const pids = workerPids().filter(alive);
      expect(pids).to.have.length(2);
      const started = performance.now();
      const code = await server.stop('SIGTERM');
      expect(code).to.equal(0);
      expect(performance.now() - started).to.be.below(10_000);
      await sleep(200);
      for (const pid of pids) expect(alive(pid), `worker ${pid} still running`).to.equal(false);
    });
  });
}
