// What `npm start` runs: the server built to plain JavaScript in dist/ (npm run build), so the
// production process never loads Node's TypeScript stripper (~28 MB of resident memory). The rest
// of the suite runs the sources; this file runs the build through the same harness, and checks the
// process-level tuning that start applies: libuv's pool threads (where scrypt runs) at a lower
// priority than the event loop.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { getAccount } from '../generated/sdk.gen.ts';
import { DB_LABEL } from './support/database.ts';
import { ROOT, startServer, type TestServer } from './support/server.ts';
import { registeredUser } from './support/users.ts';

/** Nice values of the server's libuv pool threads, read from /proc. */
function poolThreadNices(pid: number): number[] {
  const nices: number[] = [];
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    const comm = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
    if (comm !== 'libuv-worker') continue;
    // Field 19 of stat is the nice value; the command name (field 2) may hold spaces, so count
    // from the closing parenthesis.
    const fields = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    nices.push(Number(fields[16]));
  }
  return nices;
}

describe(`npm start's build (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async function () {
    this.timeout(120_000);
    await promisify(execFile)('npm', ['run', '--silent', 'build'], { cwd: ROOT });
    server = await startServer({ entry: 'dist/server.js' });
  });
  after(async () => {
    await server?.stop();
  });

  it('builds every module the server loads into dist/, with the contract beside them', () => {
    expect(fs.existsSync(path.join(ROOT, 'dist/server.js'))).to.equal(true);
    expect(fs.readFileSync(path.join(ROOT, 'dist/openapi.yaml'), 'utf8')).to.equal(
      fs.readFileSync(path.join(ROOT, 'openapi.yaml'), 'utf8'),
    );
    const sources = fs.readdirSync(path.join(ROOT, 'handlers')).filter((f) => f.endsWith('.ts'));
    for (const f of sources)
      expect(fs.existsSync(path.join(ROOT, 'dist/handlers', f.replace(/\.ts$/, '.js'))), f).to.equal(true);
  });

  it('serves the contract it was built with, and the whole sign-in path', async () => {
    const res = await fetch(`${server.url}/openapi.yaml`);
    expect(res.status).to.equal(200);
    expect(await res.text()).to.equal(fs.readFileSync(path.join(ROOT, 'openapi.yaml'), 'utf8'));

    // Registration, the emailed code, verification and login, as a new user goes through them.
    const user = await registeredUser(server, 'built');
    const me = await getAccount({ client: server.as(user.token) });
    expect(me.response!.status).to.equal(200);
    expect(me.data!.username).to.equal(user.username);
  });

  it('refuses a request without a credential with the same problem as the sources do', async () => {
    const res = await fetch(`${server.url}/v1/me/account`);
    expect(res.status).to.equal(401);
    expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
    expect(((await res.json()) as { code: string }).code).to.equal('unauthorized');
  });
});

describe(`pool thread priority (${DB_LABEL})`, () => {
  let servers: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    servers = [];
  });

  it("runs libuv pool threads (scrypt) at nice 10 by default, and at the event loop's with POOL_THREAD_NICE=0", async function () {
    if (process.platform !== 'linux') this.skip();
    this.timeout(60_000);
    const lowered = await startServer();
    const level = await startServer({ env: { POOL_THREAD_NICE: '0' } });
    servers.push(lowered, level);
    const loweredNices = poolThreadNices(lowered.child.pid!);
    // KDF concurrency + 4 threads (server.ts sizes the pool), every one of them lowered.
    expect(loweredNices.length).to.be.greaterThan(4);
    expect(new Set(loweredNices)).to.deep.equal(new Set([10]));
    expect(new Set(poolThreadNices(level.child.pid!))).to.deep.equal(new Set([0]));
    // The event loop itself keeps its priority.
    const main = fs.readFileSync(`/proc/${lowered.child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    expect(Number(main[16])).to.equal(0);
  });
});
