// Graceful shutdown: SIGTERM while requests are in flight. The server stops accepting, lets every
// request it has already received finish (each gets its real answer, and what was acknowledged is
// stored), closes idle keep-alive connections, and exits 0 well within 10 s — what an orchestrator
// (Kubernetes, systemd, a rolling deploy) needs to replace an instance without failing requests.
import { expect } from 'chai';
import { register } from '../generated/sdk.gen.ts';
import { DB_LABEL } from './support/database.ts';
import { startServer, type TestServer } from './support/server.ts';
import { uniqueUser } from './support/users.ts';
import { waitFor } from './support/wait.ts';

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
