// Graceful shutdown: SIGTERM while requests are in flight. The server stops accepting, lets every
// request it has already received finish (each gets its real answer, and what was acknowledged is
// stored), closes idle keep-alive connections, and exits 0 well within 10 s — what an orchestrator
// (Kubernetes, systemd, a rolling deploy) needs to replace an instance without failing requests.
// Meanwhile /readyz on the management port says 503, the delivery worker finishes the message it
// is sending and takes no other, API key uses marked by the last requests are written, and a
// second SIGTERM exits at once. The same for WEB_CONCURRENCY (PostgreSQL).
import { expect } from 'chai';
import { createApiKey, getAccount, register } from '../generated/sdk.gen.ts';
import { DB_LABEL, ON_POSTGRES } from './support/database.ts';
import { startSmtp } from './support/mail.ts';
import { alive, startServer, type TestServer } from './support/server.ts';
import { registeredUser, uniqueUser } from './support/users.ts';
import { waitFor } from './support/wait.ts';

/** Costlier hashing than the other suites, one at a time: registrations queue behind each other. */
const SLOW_HASHING = { SCRYPT_LOG_N: '14', KDF_CONCURRENCY: '1', LOG_LEVEL: 'debug' };

/** `n` registrations sent at once; resolves with each one's status (or the socket error). */
function burst(server: TestServer, n: number) {
  const users = Array.from({ length: n }, () => uniqueUser('term'));
  return users.map((user) =>
    register({ client: server.client, body: user }).then(
      (r) => ({ user, status: r.response?.status as number | string | undefined, id: r.data?.id }),
      (err: Error) => ({ user, status: err.message as number | string | undefined, id: undefined }),
    ),
  );
}

const received = (server: TestServer) =>
  server.logs().filter((l) => l.msg === 'request received' && l.path === '/v1/auth/register').length;

const exitOf = (server: TestServer) =>
  new Promise<{ code: number | null; at: number }>((resolve) =>
    server.child.once('exit', (code) => resolve({ code, at: performance.now() })),
  );

describe(`shutdown (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    // Costlier hashing than the other suites (logN 14, two at a time), so a burst of
    // registrations is still being worked through when the signal arrives.
    // LOG_LEVEL=debug logs each request as it arrives, so the test signals only once the server
    // holds all of them (on a loaded machine the client may still be connecting).
    server = await startServer({ env: { SCRYPT_LOG_N: '14', KDF_CONCURRENCY: '2', LOG_LEVEL: 'debug' } });
  });
  after(async () => {
    await server?.stop();
  });

  it('finishes in-flight requests on SIGTERM and exits 0 within 10 s', async function () {
    this.timeout(60_000);
    const users = Array.from({ length: 12 }, () => uniqueUser('term'));
    const inFlight = users.map((user) =>
      register({ client: server.client, body: user }).then((r) => ({
        user,
        status: r.response?.status,
        data: r.data,
        error: r.error,
      })),
    );

    // The first answer means the server is working through the burst; the rest are queued
    // behind the hashing slots, received but not answered.
    const first = await Promise.race(inFlight);
    expect(first.status).to.equal(201);
    const received = () =>
      server.logs().filter((l) => l.msg === 'request received' && l.path === '/v1/auth/register').length;
    await waitFor(() => received() >= users.length, 'every registration received', 20_000);
    const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
      server.child.once('exit', (code) => resolve({ code, at: performance.now() })),
    );
    const signalled = performance.now();
    server.child.kill('SIGTERM');

    const results = await Promise.all(inFlight);
    const { code, at } = await exited;
    expect(code, 'exit status').to.equal(0);
    expect(at - signalled, 'ms from SIGTERM to exit').to.be.below(10_000);
    for (const r of results) expect(r.status, `${r.user.username}: ${JSON.stringify(r.error)}`).to.equal(201);
    const log = server.logs();
    expect(log.some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM')).to.equal(true);
    const answeredAfterSignal = log.filter(
      (l) =>
        l.msg === 'request' &&
        l.status === 201 &&
        Date.parse(String(l.time)) >= Date.parse(String(log.find((x) => x.msg === 'shutting down')!.time)),
    );
    expect(answeredAfterSignal.length, 'requests that were still in flight when the signal came').to.be.at.least(1);

    // Everything acknowledged is in the database.
    const dump = await server.dumpDatabase();
    for (const r of results) expect(dump.includes(r.data!.id), `account of ${r.user.username}`).to.equal(true);
  });

  it('refuses new connections once stopped', async () => {
    const res = await fetch(`${server.url}/healthz`).then(
      () => 'answered',
      (err: Error & { cause?: { code?: string } }) => err.cause?.code ?? err.message,
    );
    expect(res).to.equal('ECONNREFUSED');
  });
});

describe(`shutdown: the rest of the stop (${DB_LABEL})`, () => {
  it('says not ready on the management port while it drains, then exits 0', async function () {
    this.timeout(60_000);
    const server = await startServer({ env: { ...SLOW_HASHING, MANAGEMENT_PORT: '0' } });
    try {
      const ready = () => fetch(`${server.managementUrl}/readyz`);
      expect((await ready()).status).to.equal(200);
      const inFlight = burst(server, 6);
      await waitFor(() => received(server) >= 6, 'every registration received', 20_000);
      const exited = exitOf(server);
      server.child.kill('SIGTERM');
      await server.waitForLog((l) => l.msg === 'shutting down');
      const draining = await ready();
      expect(draining.status).to.equal(503);
      expect(await draining.json()).to.include({ code: 'service_unavailable', detail: 'The server is shutting down.' });
      const results = await Promise.all(inFlight);
      expect(
        results.some((r) => r.status === 201),
        'requests still answered while draining',
      ).to.equal(true);
      for (const r of results) expect(r.status, r.user.username).to.equal(201);
      expect((await exited).code).to.equal(0);
    } finally {
      await server.stop();
    }
  });

  it('finishes the message it is sending, takes no other, and leaves the rest queued', async function () {
    this.timeout(60_000);
    const smtp = await startSmtp();
    const server = await startServer({ env: { SMTP_URL: smtp.url } });
    try {
      smtp.answerAfter(1500);
      const [a, b] = [uniqueUser('mail1'), uniqueUser('mail2')];
      await register({ client: server.client, body: a, throwOnError: true });
      await waitFor(() => smtp.receiving() === 1, 'the first message on the wire');
      await register({ client: server.client, body: b, throwOnError: true });
      const exited = exitOf(server);
      server.child.kill('SIGTERM');
      const { code } = await exited;
      expect(code).to.equal(0);
      // The message on the wire was answered and is the only one sent; the other waits in the
      // outbox for the next instance.
      expect(smtp.to(a.email)).to.have.length(1);
      expect(smtp.receiving()).to.equal(1);
      const rows = (await server.dumpDatabase())
        .split('\n')
        .flatMap((t) => JSON.parse(t) as Record<string, unknown>[])
        .filter((r) => r.kind === 'verify_email');
      expect(rows.find((r) => r.recipient === a.email)?.sent_at, 'the first one recorded as sent').to.not.equal(null);
      expect(rows.find((r) => r.recipient === b.email)?.sent_at, 'the second one still queued').to.equal(null);
    } finally {
      await server.stop();
      await smtp.close();
    }
  });

  it('writes the API key uses of the last requests before it exits', async function () {
    this.timeout(60_000);
    const server = await startServer();
    try {
      const user = await registeredUser(server, 'keyuse');
      const key = await createApiKey({ client: server.as(user.token), body: { name: 'last' }, throwOnError: true });
      await getAccount({ client: server.as(key.data.raw_key), throwOnError: true });
      // At once: the batch that writes marked uses runs every 2 s, so only the stop can write this one.
      const exited = exitOf(server);
      server.child.kill('SIGTERM');
      expect((await exited).code).to.equal(0);
      const rows = (await server.dumpDatabase())
        .split('\n')
        .flatMap((t) => JSON.parse(t) as Record<string, unknown>[])
        .filter((r) => r.id === key.data.id);
      expect(rows).to.have.length(1);
      expect(rows[0]!.last_used_at, 'last_used_at').to.not.equal(null);
    } finally {
      await server.stop();
    }
  });

  it('exits at once on a second SIGTERM, whatever is still in flight', async function () {
    this.timeout(60_000);
    const server = await startServer({ env: SLOW_HASHING });
    try {
      const inFlight = burst(server, 10);
      await waitFor(() => received(server) >= 10, 'every registration received', 20_000);
      const exited = exitOf(server);
      server.child.kill('SIGTERM');
      await server.waitForLog((l) => l.msg === 'shutting down');
      const second = performance.now();
      server.child.kill('SIGTERM');
      const { code, at } = await exited;
      expect(code).to.equal(1);
      expect(at - second, 'ms from the second SIGTERM to exit').to.be.below(1500);
      const results = await Promise.all(inFlight);
      expect(
        results.some((r) => r.status !== 201),
        'requests cut off',
      ).to.equal(true);
      expect(server.logs().some((l) => l.msg === 'second signal: exiting now')).to.equal(true);
    } finally {
      await server.stop();
    }
  });
});

if (ON_POSTGRES) {
  describe('shutdown with WEB_CONCURRENCY=2 (node:cluster, PostgreSQL)', () => {
    const CLUSTER = { ...SLOW_HASHING, WEB_CONCURRENCY: '2', MANAGEMENT_PORT: '0' };

    it('serves the management port from the workers, drains them on SIGTERM and exits 0', async function () {
      this.timeout(90_000);
      const server = await startServer({ env: CLUSTER });
      try {
        expect(server.managementUrl, 'printed once every worker listens').to.be.a('string');
        expect((await fetch(`${server.managementUrl}/readyz`)).status).to.equal(200);
        const metrics = await fetch(`${server.managementUrl}/metrics`);
        expect(metrics.status, 'no METRICS_TOKEN: open on the management port').to.equal(200);
        expect(await metrics.text()).to.include('rst_http_requests_total{operation="readyz",status="200"}');
        expect((await fetch(`${server.url}/metrics`)).status, 'not on the public port').to.equal(404);

        const inFlight = burst(server, 8);
        await waitFor(() => received(server) >= 8, 'every registration received', 20_000);
        const exited = exitOf(server);
        const signalled = performance.now();
        server.child.kill('SIGTERM');
        const results = await Promise.all(inFlight);
        const { code, at } = await exited;
        expect(code).to.equal(0);
        expect(at - signalled).to.be.below(12_000);
        for (const r of results) expect(r.status, r.user.username).to.equal(201);
        const ids = results.map((r) => r.id!);
        const rows = await server.sql('select id from accounts where id = any($1::uuid[])', [ids]);
        expect(rows).to.have.length(ids.length);
      } finally {
        await server.stop();
      }
    });

    it('exits at once, workers too, on a second SIGTERM to the primary', async function () {
      this.timeout(90_000);
      const server = await startServer({ env: CLUSTER });
      try {
        // Each worker's own line may reach the pipe after the primary's "listening".
        const workers = await waitFor(() => {
          const pids = server
            .logs()
            .filter((l) => l.msg === 'worker listening')
            .map((l) => Number(l.pid));
          return pids.length === 2 && pids;
        }, 'both workers listening');
        const inFlight = burst(server, 10);
        await waitFor(() => received(server) >= 10, 'every registration received', 20_000);
        const exited = exitOf(server);
        server.child.kill('SIGTERM');
        await waitFor(() => server.logs().filter((l) => l.msg === 'shutting down').length >= 3, 'all shutting down');
        const second = performance.now();
        server.child.kill('SIGTERM');
        const { code, at } = await exited;
        expect(code).to.equal(1);
        expect(at - second).to.be.below(1500);
        await Promise.all(inFlight);
        await waitFor(() => workers.every((pid) => !alive(pid)), 'workers gone', 3000);
      } finally {
        await server.stop();
      }
    });
  });
}
