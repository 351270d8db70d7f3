import { expect } from 'chai';
import { getAccount, login, register } from '../generated/sdk.gen.ts';
import { DB_LABEL, ON_POSTGRES } from './support/database.ts';
import { startServer, type TestServer } from './support/server.ts';
import { registeredUser, uniqueUser } from './support/users.ts';

describe(`login (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server.stop();
  });

  it('signs in with the username or the email, in any case, and the token reads the account', async () => {
    const user = await registeredUser(server, 'login');
    for (const identifier of [user.username, user.username.toUpperCase(), user.email, user.email.toUpperCase()]) {
      const { data, response } = await login({
        client: server.client,
        body: { username: identifier, password: user.password },
      });
      expect(response!.status, identifier).to.equal(200);
      expect(data!.token_type).to.equal('bearer');
      expect(data!.expires_in).to.equal(3600);
      expect(response!.headers.get('cache-control')).to.equal('no-store');
      const account = await getAccount({ client: server.as(data!.access_token), throwOnError: true });
      expect(account.data.username).to.equal(user.username);
    }
  });

  it('accepts the password in another Unicode normal form (NFKC)', async () => {
    const user = uniqueUser('nf');
    const composed = `caf\u00e9 ${user.password}`;
    await register({ client: server.client, body: { ...user, password: composed }, throwOnError: true });
    const code = /code is: (\d{6})/.exec((await server.consoleMail(user.email)).text)![1]!;
    const { verifyEmail } = await import('../generated/sdk.gen.ts');
    await verifyEmail({ client: server.client, body: { email: user.email, code }, throwOnError: true });
    const decomposed = `cafe\u0301 ${user.password}`;
    const { response } = await login({
      client: server.client,
      body: { username: user.username, password: decomposed },
    });
    expect(response!.status).to.equal(200);
  });

  it('answers one 401 invalid_credentials for a wrong password and an unknown account', async () => {
    const user = await registeredUser(server, 'wrong');
    const wrong = await login({
      client: server.client,
      body: { username: user.username, password: 'not the password' },
    });
    const unknown = await login({
      client: server.client,
      body: { username: 'nobody_like_this', password: 'not the password' },
    });
    const unknownEmail = await login({
      client: server.client,
      body: { username: 'nobody@example.test', password: 'not the password' },
    });
    for (const r of [wrong, unknown, unknownEmail]) {
      expect(r.response!.status).to.equal(401);
      expect(r.error).to.deep.include({ code: 'invalid_credentials', title: 'Invalid username or password' });
      expect(r.response!.headers.get('www-authenticate')).to.equal('Bearer');
    }
    expect(JSON.stringify(wrong.error)).to.equal(JSON.stringify(unknown.error));
  });

  it('answers 403 email_not_verified only after a correct password', async () => {
    const user = uniqueUser('unverified');
    await register({ client: server.client, body: user, throwOnError: true });
    const right = await login({ client: server.client, body: { username: user.username, password: user.password } });
    expect(right.response!.status).to.equal(403);
    expect(right.error).to.include({ code: 'email_not_verified' });
    const wrong = await login({
      client: server.client,
      body: { username: user.username, password: 'wrong password here' },
    });
    expect(wrong.response!.status).to.equal(401);
  });

  it('refuses a malformed body with validation_failed', async () => {
    const { error, response } = await login({ client: server.client, body: { username: '', password: 'x' } });
    expect(response!.status).to.equal(400);
    expect(error).to.include({ code: 'validation_failed' });
  });
});

describe(`password hashing queue (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    // One hash at a time, none waiting, and a cost high enough that requests overlap.
    server = await startServer({
      env: { KDF_CONCURRENCY: '1', KDF_MAX_QUEUE: '0', SCRYPT_LOG_N: '14', SCRYPT_P: '1' },
    });
  });
  after(async () => {
    await server.stop();
  });

  it('sheds load with 503 server_busy and Retry-After instead of queueing without bound', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        login({ client: server.client, body: { username: `busy_${i}`, password: 'some password' } }),
      ),
    );
    const busy = results.filter((r) => r.response!.status === 503);
    expect(busy.length).to.be.greaterThan(0);
    for (const r of busy) {
      expect(r.error).to.include({ code: 'server_busy' });
      expect(r.response!.headers.get('retry-after')).to.equal('1');
    }
    expect(results.filter((r) => r.response!.status === 401).length).to.be.greaterThan(0);
  });
});

describe(`password hashing queue with room (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { KDF_CONCURRENCY: '2', KDF_MAX_QUEUE: '100' } });
  });
  after(async () => {
    await server.stop();
  });

  it('queues a burst of 20 concurrent registrations instead of refusing them', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () => register({ client: server.client, body: uniqueUser('burst') })),
    );
    expect(results.map((r) => r.response!.status)).to.deep.equal(Array(20).fill(201));
  });
});

if (ON_POSTGRES) {
  describe('re-hashing on login (PostgreSQL, two instances with different costs)', () => {
    let cheap: TestServer;
    let dearer: TestServer;
    before(async () => {
      cheap = await startServer({ env: { SCRYPT_LOG_N: '10' } });
      dearer = await startServer({ env: { SCRYPT_LOG_N: '11' }, shareDatabaseWith: cheap });
    });
    after(async () => {
      await dearer.stop();
      await cheap.stop();
    });

    // scrypt-kdf's format: "scrypt" (6 bytes), version (1), logN (1), r (4), p (4), ...
    const storedLogN = async (id: string) => {
      const [row] = await cheap.sql<{ password_hash: string }>('select password_hash from accounts where id = $1', [
        id,
      ]);
      return Buffer.from(row!.password_hash, 'base64')[7];
    };

    it('upgrades a hash made with other parameters at the next successful login', async () => {
      const user = await registeredUser(cheap, 'rehash');
      expect(await storedLogN(user.id)).to.equal(10);
      const r = await login({ client: dearer.client, body: { username: user.username, password: user.password } });
      expect(r.response!.status).to.equal(200);
      expect(await storedLogN(user.id)).to.equal(11);
      const again = await login({ client: cheap.client, body: { username: user.username, password: user.password } });
      expect(again.response!.status).to.equal(200);
    });

    it('refuses to compute a stored hash whose logN is above 20', async () => {
      const user = await registeredUser(cheap, 'hugeN');
      const [row] = await cheap.sql<{ password_hash: string }>('select password_hash from accounts where id = $1', [
        user.id,
      ]);
      const bytes = Buffer.from(row!.password_hash, 'base64');
      bytes[7] = 30;
      await cheap.sql('update accounts set password_hash = $1 where id = $2', [bytes.toString('base64'), user.id]);
      const started = Date.now();
      const r = await login({ client: cheap.client, body: { username: user.username, password: user.password } });
      expect(r.response!.status).to.equal(401);
      expect(Date.now() - started).to.be.lessThan(5000);
    });
  });
}
