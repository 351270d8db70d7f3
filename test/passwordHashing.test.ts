// Password hashing under load and against hostile stored hashes. With one hash at a time and no
// queue (KDF_CONCURRENCY=1, KDF_MAX_QUEUE=0) a burst of logins is shed with 503 server_busy; after
// it, an unknown username must still answer 401 exactly like a wrong password (no existence
// oracle), and the shed attempts must not have been counted towards the identifier's 429. A stored
// hash whose parameters exceed the caps configuration obeys is refused (401) without being computed.
import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { login } from '../generated/sdk.gen.ts';
import { DB_LABEL, ON_POSTGRES } from './support/database.ts';
import { startServer, type TestServer } from './support/server.ts';
import { registeredUser } from './support/users.ts';
import { sleep } from './support/wait.ts';

// Real work per hash (32 MiB, tens of ms), so a burst really overlaps; one at a time, none waiting.
const SHEDDING = { SCRYPT_LOG_N: '15', SCRYPT_R: '8', SCRYPT_P: '1', KDF_CONCURRENCY: '1', KDF_MAX_QUEUE: '0' };

async function attempt(server: TestServer, username: string, password: string) {
  const { error, response } = await login({ client: server.client, body: { username, password } });
  return { status: response!.status, code: (error as { code?: string } | undefined)?.code };
}

describe(`password hashing under load (${DB_LABEL})`, () => {
  let server: TestServer;
  let user: Awaited<ReturnType<typeof registeredUser>>;
  before(async function () {
    this.timeout(60_000);
    server = await startServer({ env: SHEDDING });
    user = await registeredUser(server, 'shed');
  });
  after(async () => {
    await server?.stop();
  });

  it('answers an unknown username 401 like a wrong password after a shed burst', async function () {
    this.timeout(60_000);
    const shed: number[] = [];
    for (let round = 0; round < 3; round++) {
      // A real account's hash first, then unknown accounts while it runs: the very first dummy
      // verification meets a full queue.
      const real = attempt(server, user.username, `wrong password ${round}`);
      await sleep(10);
      const unknown = Array.from({ length: 6 }, (_, i) => attempt(server, `nobody_${round}_${i}_${Date.now()}`, 'x'));
      const results = await Promise.all([real, ...unknown]);
      for (const r of results) expect([401, 503], JSON.stringify(r)).to.include(r.status);
      shed.push(results.filter((r) => r.status === 503 && r.code === 'server_busy').length);
      await sleep(200);
    }
    expect(
      shed.reduce((a, b) => a + b),
      'requests shed in the bursts',
    ).to.be.at.least(1);

    for (let i = 0; i < 3; i++) {
      expect(await attempt(server, `nobody_after_${i}_${Date.now()}`, 'x')).to.deep.equal({
        status: 401,
        code: 'invalid_credentials',
      });
      expect(await attempt(server, user.username, 'still the wrong password')).to.deep.equal({
        status: 401,
        code: 'invalid_credentials',
      });
    }
  });

  it('does not count shed attempts towards the identifier lock-out', async function () {
    this.timeout(60_000);
    // RATE_LIMIT_LOGIN_IDENTIFIER is the default here: 10 failures per 15 minutes.
    const identifier = `storm_${Date.now()}`;
    const burst = await Promise.all(Array.from({ length: 8 }, () => attempt(server, identifier, 'guess')));
    const judged = burst.filter((r) => r.status === 401).length;
    const shed = burst.filter((r) => r.status === 503).length;
    expect(judged + shed, JSON.stringify(burst)).to.equal(8);
    expect(shed, 'the burst was shed in part').to.be.at.least(1);
    // Only the judged attempts count: 10 - judged more failures are allowed, then 429.
    for (let i = 0; i < 10 - judged; i++) {
      expect((await attempt(server, identifier, 'guess')).status, `attempt ${judged + i + 1}`).to.equal(401);
    }
    expect(await attempt(server, identifier, 'guess')).to.deep.equal({ status: 429, code: 'too_many_requests' });
  });
});

/** An scrypt-kdf key (96 bytes: "scrypt", version, logN, r, p, salt, checksum, HMAC) with a valid
 * checksum for these parameters, so nothing short of computing it would tell it is not real. */
function storedHash(logN: number, r: number, p: number): string {
  const key = Buffer.alloc(96);
  key.write('scrypt', 0, 'latin1');
  key.writeUInt8(0, 6);
  key.writeUInt8(logN, 7);
  key.writeUInt32BE(r, 8);
  key.writeUInt32BE(p, 12);
  randomBytes(32).copy(key, 16);
  createHash('sha256').update(key.subarray(0, 48)).digest().copy(key, 48, 0, 16);
  randomBytes(32).copy(key, 64);
  return key.toString('base64');
}

if (ON_POSTGRES) {
  describe('stored hashes beyond the cost caps (PostgreSQL)', () => {
    let server: TestServer;
    before(async () => {
      server = await startServer();
    });
    after(async () => {
      await server?.stop();
    });

    for (const [what, logN, r, p] of [
      ['memory: 128·N·r = 512 MiB (cap 256 MiB)', 18, 16, 1],
      ['work: N·r·p = 2^26 (cap 2^24)', 17, 8, 64],
      ['logN 21', 21, 1, 1],
    ] as const) {
      it(`refuses with 401, without computing it, a stored hash needing ${what}`, async function () {
        this.timeout(120_000);
        const user = await registeredUser(server, 'cost');
        await server.sql('update accounts set password_hash = $1 where id = $2', [storedHash(logN, r, p), user.id]);
        const started = performance.now();
        const result = await attempt(server, user.username, user.password);
        const ms = performance.now() - started;
        expect(result).to.deep.equal({ status: 401, code: 'invalid_credentials' });
        // Computing it would take seconds (and hundreds of MiB); refusing it is a header read.
        expect(ms, 'answered without running scrypt at that cost').to.be.below(1500);
      });
    }
  });
}
