import { expect } from 'chai';
import { register } from '../generated/sdk.gen.ts';
import { DB_LABEL } from './support/database.ts';
import { startServer, type TestServer } from './support/server.ts';
import { uniqueUser } from './support/users.ts';

describe(`register (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server.stop();
  });

  it('creates an unverified account and answers 201 with the account', async () => {
    const user = uniqueUser('reg');
    const { data, response } = await register({
      client: server.client,
      body: { ...user, email: user.email.toUpperCase() },
    });
    expect(response!.status).to.equal(201);
    expect(data).to.include({ username: user.username, email: user.email.toLowerCase(), email_verified: false });
    expect(data!.id).to.match(/^[0-9a-f-]{36}$/);
    expect(new Date(data!.created_at).getTime()).to.be.closeTo(Date.now(), 60_000);
  });

  it('emails a six-digit verification code', async () => {
    const user = uniqueUser('mail');
    await register({ client: server.client, body: user, throwOnError: true });
    const mail = await server.consoleMail(user.email);
    expect(mail.text).to.match(/code is: \d{6}/);
  });

  it('refuses a second account with the same username in another case (409 username_taken)', async () => {
    const user = uniqueUser('dup');
    await register({ client: server.client, body: user, throwOnError: true });
    const other = uniqueUser('dup2');
    const { error, response } = await register({
      client: server.client,
      body: { ...other, username: user.username.toUpperCase() },
    });
    expect(response!.status).to.equal(409);
    expect(error).to.include({ code: 'username_taken' });
  });

  it('refuses a second account with the same email in another case (409 email_taken)', async () => {
    const user = uniqueUser('dupe');
    await register({ client: server.client, body: user, throwOnError: true });
    const other = uniqueUser('dupe2');
    const { error, response } = await register({
      client: server.client,
      body: { ...other, email: user.email.toUpperCase() },
    });
    expect(response!.status).to.equal(409);
    expect(error).to.include({ code: 'email_taken' });
  });

  it('lets exactly one of 20 concurrent registrations of one username win; the rest get 409', async () => {
    const base = uniqueUser('race');
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        register({
          client: server.client,
          body: { username: base.username, email: `race${i}.${base.email}`, password: base.password },
        }),
      ),
    );
    const statuses = results.map((r) => r.response!.status).sort();
    expect(statuses.filter((s) => s === 201)).to.have.length(1);
    expect(statuses.filter((s) => s === 409)).to.have.length(19);
    for (const r of results.filter((r) => r.response!.status === 409))
      expect(r.error).to.include({ code: 'username_taken' });
  });

  describe('password policy (400 weak_password)', () => {
    const cases: [string, (u: ReturnType<typeof uniqueUser>) => string][] = [
      ['too short', () => 'short'],
      ['on the common-password list', () => 'password123'],
      ['a common password in another case', () => 'QwErTyUiOp'],
      ['equal to the username', (u) => u.username],
      ['containing the username', (u) => `xx${u.username.toUpperCase()}yy`],
      ['containing the email local part', (u) => `my ${u.email.split('@')[0]} pw`],
      ['empty', () => ''],
    ];
    for (const [name, password] of cases) {
      it(`refuses a password ${name}`, async () => {
        const user = uniqueUser('weak');
        const { error, response } = await register({
          client: server.client,
          body: { ...user, password: password(user) },
        });
        expect(response!.status).to.equal(400);
        expect(error).to.include({ code: 'weak_password' });
        expect((error as { detail?: string }).detail).to.be.a('string');
      });
    }

    it('counts length after NFKC normalisation, and accepts any characters', async () => {
      const user = uniqueUser('nfkc');
      const { response } = await register({
        client: server.client,
        body: { ...user, password: `ｐａｓｓ ｗｏｒｄ ✓ 密码 ${user.password.slice(-4)}` },
      });
      expect(response!.status).to.equal(201);
    });

    it('answers validation_failed above 256 characters', async () => {
      const user = uniqueUser('long');
      const { error, response } = await register({
        client: server.client,
        body: { ...user, password: 'x'.repeat(257) },
      });
      expect(response!.status).to.equal(400);
      expect(error).to.include({ code: 'validation_failed' });
    });
  });

  describe('input validation (400 validation_failed with errors)', () => {
    const bad: [string, Record<string, unknown>][] = [
      ['a missing email', { email: undefined }],
      ['a malformed email', { email: 'not-an-email' }],
      ['an email over 254 characters', { email: `${'a'.repeat(250)}@example.test` }],
      ['a username of 2 characters', { username: 'ab' }],
      ['a username of 33 characters', { username: 'a'.repeat(33) }],
      ['a username starting with a dot', { username: '.abc' }],
      ['a username with a space', { username: 'ab cd' }],
      ['a number as username', { username: 12345 }],
      ['an unknown field', { admin: true }],
    ];
    for (const [name, patch] of bad) {
      it(`refuses ${name}`, async () => {
        const body = { ...uniqueUser('val'), ...patch } as Record<string, unknown>;
        for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
        const { error, response } = await register({ client: server.client, body: body as never });
        expect(response!.status).to.equal(400);
        expect(error).to.include({ code: 'validation_failed' });
        expect((error as { errors?: unknown[] }).errors).to.be.an('array').that.is.not.empty;
      });
    }
  });
});

describe(`register rate limit (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { RATE_LIMIT_REGISTER_IP: '3/3600' } });
  });
  after(async () => {
    await server.stop();
  });

  it('answers 429 with Retry-After past the per-IP limit', async () => {
    for (let i = 0; i < 3; i++) await register({ client: server.client, body: uniqueUser('rl'), throwOnError: true });
    const { error, response } = await register({ client: server.client, body: uniqueUser('rl') });
    expect(response!.status).to.equal(429);
    expect(error).to.include({ code: 'too_many_requests' });
    expect(Number(response!.headers.get('retry-after'))).to.be.within(1, 3600);
  });
});
