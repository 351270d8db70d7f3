// Limits that cannot be turned into a disk filler: a request one limit refuses adds no counter
// rows for its other keys, IPv6 clients share one bucket per /64 (IPv4-mapped addresses count as
// the IPv4 address), and counter keys are keyed hashes, not the SHA-256 of an email or address.
// Client addresses come from X-Forwarded-For behind TRUST_PROXY, since the tests can only
// connect from loopback.
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { checkResponse } from './support/contract.ts';
import { DB_LABEL, dumpedRows, ON_POSTGRES } from './support/database.ts';
import { startServer, type TestServer } from './support/server.ts';
import { uniqueUser } from './support/users.ts';

/** POSTs JSON as if from `clientIp` (the last X-Forwarded-For entry, which TRUST_PROXY=true believes). */
async function postAs(server: TestServer, clientIp: string, path: string, body: unknown): Promise<number> {
  const url = `${server.url}${path}`;
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': clientIp },
    body: JSON.stringify(body),
  });
  await checkResponse('POST', url, res.clone());
  return res.status;
}

describe(`a refused request adds no counter rows (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({
      env: { TRUST_PROXY: 'true', RATE_LIMIT_EMAIL_IP: '1/3600', RATE_LIMIT_LOGIN_IP: '1/900' },
    });
  });
  after(async () => {
    await server.stop();
  });

  it('forgot-password and login over their per-IP limit, each time with a new identifier', async () => {
    const count = async () => (ON_POSTGRES ? (await server.sql('select key from rate_limits')).length : undefined);
    expect(await postAs(server, '198.51.100.1', '/v1/auth/forgot-password', { email: uniqueUser().email })).to.equal(
      202,
    );
    expect(
      await postAs(server, '198.51.100.1', '/v1/auth/login', { username: uniqueUser().username, password: 'nope' }),
    ).to.equal(401);
    const before = await count();
    if (ON_POSTGRES) expect(before).to.equal(5); // minute, hour and IP; identifier and IP
    for (let i = 0; i < 20; i++) {
      expect(await postAs(server, '198.51.100.1', '/v1/auth/forgot-password', { email: uniqueUser().email })).to.equal(
        429,
      );
      expect(
        await postAs(server, '198.51.100.1', '/v1/auth/login', { username: uniqueUser().username, password: 'nope' }),
      ).to.equal(429);
    }
    if (ON_POSTGRES) expect(await count(), 'rows after 40 refused requests').to.equal(before);
    // The refused ones did not count on the IP counter either: it still says 1 (SQL) ...
    if (ON_POSTGRES) {
      const counts = await server.sql<{ count: number }>('select count from rate_limits order by key');
      for (const row of counts) expect(row.count).to.equal(1);
    }
    // ... and every table, read whole once the server stopped, holds only those 5 counters.
    const counters = dumpedRows(await server.dumpDatabase(), 'window_start');
    expect(counters).to.have.length(5);
  });
});

describe(`limit buckets and keys (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({
      env: { TRUST_PROXY: 'true', RATE_LIMIT_REGISTER_IP: '2/3600', RATE_LIMIT_EMAIL_IP: '3/3600' },
    });
  });
  after(async () => {
    await server.stop();
  });

  const registerFrom = (ip: string) => postAs(server, ip, '/v1/auth/register', uniqueUser('v6'));

  it('keys IPv6 clients by their /64, however the address is written', async () => {
    expect(await registerFrom('2001:db8:aa:1::1')).to.equal(201);
    expect(await registerFrom('2001:db8:aa:1:ffff:ffff:ffff:fffe')).to.equal(201);
    // Same /64, written expanded with leading zeros: the third registration of that network.
    expect(await registerFrom('2001:0db8:00aa:0001:1234:5678:9abc:def0')).to.equal(429);
    expect(await registerFrom('2001:DB8:AA:1::9')).to.equal(429);
    // The neighbouring /64 is another client.
    expect(await registerFrom('2001:db8:aa:2::1')).to.equal(201);
  });

  it('keys an IPv4-mapped IPv6 address as the IPv4 address it carries', async () => {
    expect(await registerFrom('::ffff:198.51.100.7')).to.equal(201);
    expect(await registerFrom('::ffff:c633:6407')).to.equal(201); // 198.51.100.7 in hexadecimal
    expect(await registerFrom('198.51.100.7')).to.equal(429);
    expect(await registerFrom('198.51.100.8')).to.equal(201);
  });

  it('keeps a per-IP limit exact under concurrent requests from one client', async () => {
    const statuses = await Promise.all(
      Array.from({ length: 12 }, () =>
        postAs(server, '2001:db8:bb:1::1', '/v1/auth/forgot-password', { email: uniqueUser('conc').email }),
      ),
    );
    expect(statuses.filter((s) => s === 202)).to.have.length(3);
    expect(statuses.filter((s) => s === 429)).to.have.length(9);
  });

  it('stores keyed hashes: neither an email, nor its SHA-256, nor an address is in the table', async () => {
    const email = uniqueUser('hmac').email;
    expect(await postAs(server, '203.0.113.9', '/v1/auth/forgot-password', { email })).to.equal(202);
    const dump = await server.dumpDatabase();
    const keys = dumpedRows(dump, 'window_start').map((r) => String(r.key));
    expect(keys.filter((k) => k.startsWith('forgot-minute:'))).to.have.length.greaterThan(0);
    for (const digest of [
      createHash('sha256').update(email).digest('base64url').slice(0, 32),
      createHash('sha256').update(email).digest('hex').slice(0, 32),
      createHash('sha256').update('203.0.113.9').digest('base64url').slice(0, 32),
    ])
      expect(dump).not.to.include(digest);
    for (const clear of [email, '203.0.113.9', '2001:db8:aa:1']) expect(keys.join('\n')).not.to.include(clear);
  });
});
