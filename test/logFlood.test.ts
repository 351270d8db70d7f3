// What a client sends cannot make logging expensive or unbounded: a long path is logged cut to a
// few hundred characters, still scrubbed of credentials, and a flood of unauthenticated requests
// whose paths are `eyJ` repeated (the shape that made the JWT scrubber quadratic) leaves /healthz
// as fast as it is without the flood.
import { expect } from 'chai';
import { DB_LABEL } from './support/database.ts';
import { median } from './support/requests.ts';
import { startServer, type TestServer } from './support/server.ts';
import { sleep } from './support/wait.ts';

// A signed-looking JWT: header.payload.signature, each part base64url.
const JWT = `${Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"flood-test","n":1}').toString('base64url')}.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg`;

async function healthzLatencies(server: TestServer, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const res = await fetch(`${server.url}/healthz`);
    await res.arrayBuffer();
    out.push(performance.now() - started);
    await sleep(5);
  }
  return out;
}

describe(`logging what clients send (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  it('logs a long path cut to 256 characters, with a JWT in it still redacted', async () => {
    const requestId = `long-path.${Date.now()}`;
    const path = `/x/${'a'.repeat(200)}/${JWT}/${'b'.repeat(3000)}`;
    const res = await fetch(`${server.url}${path}`, { headers: { 'x-request-id': requestId } });
    expect(res.status).to.equal(404);
    const line = await server.waitForLog((l) => l.requestId === requestId && l.msg === 'request');
    const logged = String(line.path);
    expect(logged.startsWith(`/x/${'a'.repeat(200)}/[redacted-jwt]/bbb`)).to.equal(true);
    expect(logged.length, 'the logged path is bounded').to.be.below(300);
    expect(logged).to.match(/…\[\d+ more\]$/);
    expect(server.output()).not.to.include(JWT.split('.')[1]);

    // The cut cannot leave half a token in the line: one that straddles it is redacted whole.
    const straddling = `/y/${'c'.repeat(230)}/${JWT}`;
    const id2 = `${requestId}.2`;
    await (await fetch(`${server.url}${straddling}`, { headers: { 'x-request-id': id2 } })).arrayBuffer();
    const line2 = await server.waitForLog((l) => l.requestId === id2 && l.msg === 'request');
    expect(String(line2.path)).to.equal(`/y/${'c'.repeat(230)}/[redacted-jwt]`);
    expect(server.output()).not.to.include(JWT.split('.')[0]!.slice(0, 20));
  });

  it('keeps /healthz latency flat while 16 KB paths of eyJ repeated arrive', async function () {
    this.timeout(120_000);
    const quiet = median(await healthzLatencies(server, 40));

    const trap = `/${'eyJ'.repeat(5000)}`; // 15 KB, under Node's 16 KB header limit
    let flooding = true;
    let sent = 0;
    const flood = Array.from({ length: 4 }, async () => {
      while (flooding) {
        const res = await fetch(`${server.url}${trap}`);
        expect(res.status).to.equal(404);
        await res.arrayBuffer();
        sent++;
      }
    });
    await sleep(300);
    const during = await healthzLatencies(server, 40);
    flooding = false;
    await Promise.all(flood);
    const busy = median(during);
    // Before the scrubber was linear each of these requests cost ~180 ms of event loop here, and
    // /healthz waited behind them (a median of hundreds of ms). Four cheap concurrent requests
    // may cost a few ms; the bound is generous for a shared machine.
    expect(sent, 'flood requests answered').to.be.at.least(20);
    expect(busy, `median /healthz ms: quiet ${quiet.toFixed(1)}, flooded ${busy.toFixed(1)}`).to.be.below(
      Math.max(5 * quiet, quiet + 25),
    );
  });
});
