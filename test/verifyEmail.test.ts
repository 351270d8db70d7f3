import { expect } from 'chai';
import { getAccount, login, register, resendVerification, verifyEmail } from '../generated/sdk.gen.ts';
import { DB_LABEL, ON_POSTGRES } from './support/database.ts';
import { codeFrom, startSmtp, storedRaw, type TestSmtp } from './support/mail.ts';
import { startServer, type TestServer } from './support/server.ts';
import { uniqueUser } from './support/users.ts';

/** A six-digit code that is not `code`. */
const wrong = (code: string, n = 1): string => String((Number(code) + n) % 1_000_000).padStart(6, '0');

const DAILY = 40;

describe(`verifyEmail (${DB_LABEL}, real SMTP)`, () => {
  let smtp: TestSmtp;
  let server: TestServer;
  const codes: string[] = [];
  const passwords: string[] = [];

  before(async () => {
    smtp = await startSmtp();
    // The daily cap is raised from 20 so the concurrency test below meets the per-code limit, not
    // this one; the daily-cap test reads the same number.
    server = await startServer({ env: { SMTP_URL: smtp.url, RATE_LIMIT_VERIFY_DAILY: `${DAILY}/86400` } });
  });
  after(async () => {
    await server.stop();
    await smtp.close();
  });

  /** Registers an unverified account and returns it with the code from its email. */
  async function registered(prefix: string) {
    const user = uniqueUser(prefix);
    passwords.push(user.password);
    const created = await register({ client: server.client, body: user, throwOnError: true });
    const code = codeFrom(await smtp.waitFor(user.email));
    codes.push(code);
    return { ...user, id: created.data.id, code };
  }

  async function verify(email: string, code: string) {
    return verifyEmail({ client: server.client, body: { email, code } });
  }

  it('register → email → verify → login: verification is what lets login succeed', async () => {
    const user = uniqueUser('life');
    passwords.push(user.password);
    const created = await register({ client: server.client, body: user });
    expect(created.response?.status).to.equal(201);
    expect(created.data).to.include({ email_verified: false });

    const before = await login({ client: server.client, body: { username: user.username, password: user.password } });
    expect(before.response?.status).to.equal(403);
    expect(before.error).to.include({ code: 'email_not_verified' });

    const mail = await smtp.waitFor(user.email);
    const code = codeFrom(mail);
    codes.push(code);
    expect(mail.html).to.include(code);

    const verified = await verify(user.email.toUpperCase(), code);
    expect(verified.response?.status).to.equal(200);
    expect(verified.data).to.deep.equal({ email: user.email, email_verified: true });

    const session = await login({ client: server.client, body: { username: user.email, password: user.password } });
    expect(session.response?.status).to.equal(200);
    const me = await getAccount({ client: server.as(session.data!.access_token) });
    expect(me.data).to.include({ email_verified: true });
  });

  it('answers one invalid_code for a wrong code, a used code and an unknown email', async () => {
    const user = await registered('one');
    const wrongCode = await verify(user.email, wrong(user.code));
    const unknown = await verify(`nobody.${user.email}`, user.code);
    expect((await verify(user.email, user.code)).response?.status).to.equal(200);
    const used = await verify(user.email, user.code);

    for (const r of [wrongCode, unknown, used]) {
      expect(r.response?.status).to.equal(400);
      expect(r.error).to.include({ code: 'invalid_code' });
    }
    expect(unknown.error).to.deep.equal(wrongCode.error);
    expect(used.error).to.deep.equal(wrongCode.error);
  });

  if (ON_POSTGRES) {
    it('answers invalid_code for an expired code (expiry moved into the past on PostgreSQL)', async () => {
      const user = await registered('exp');
      await server.sql(`update verification_codes set expires_at = now() - interval '1 second' where account_id = $1`, [
        user.id,
      ]);
      const r = await verify(user.email, user.code);
      expect(r.response?.status).to.equal(400);
      expect(r.error).to.include({ code: 'invalid_code' });
    });
  }

  it('kills a code after 5 wrong tries, even for the right code; a new code works', async () => {
    const user = await registered('five');
    for (let i = 1; i <= 5; i++) {
      const r = await verify(user.email, wrong(user.code, i));
      expect(r.error).to.include({ code: 'invalid_code' });
    }
    const right = await verify(user.email, user.code);
    expect(right.response?.status).to.equal(400);
    expect(right.error).to.include({ code: 'invalid_code' });

    await resendVerification({ client: server.client, body: { email: user.email }, throwOnError: true });
    const fresh = codeFrom(await smtp.waitFor(user.email, 2));
    codes.push(fresh);
    expect((await verify(user.email, fresh)).response?.status).to.equal(200);
  });

  it('30 wrong codes fired at once, then the right one: still rejected (no more than 5 tries counted)', async () => {
    const user = await registered('race');
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => verify(user.email, wrong(user.code, i + 1))),
    );
    for (const r of results) {
      expect(r.response?.status).to.equal(400);
      expect(r.error).to.include({ code: 'invalid_code' });
    }
    const right = await verify(user.email, user.code);
    expect(right.response?.status).to.equal(400);
    expect(right.error).to.include({ code: 'invalid_code' });
    if (ON_POSTGRES) {
      const [row] = await server.sql<{ attempts: number }>(
        'select attempts from verification_codes where account_id = $1',
        [user.id],
      );
      expect(row!.attempts).to.equal(5);
    }
    const me = await login({ client: server.client, body: { username: user.username, password: user.password } });
    expect(me.error).to.include({ code: 'email_not_verified' });
  });

  it('replaces a code with a newer one: the old code stops working', async () => {
    const user = await registered('new');
    let fresh = user.code;
    // Two draws collide once in a million; ask again rather than test nothing.
    for (let n = 2; fresh === user.code; n++) {
      await resendVerification({ client: server.client, body: { email: user.email }, throwOnError: true });
      fresh = codeFrom(await smtp.waitFor(user.email, n));
      codes.push(fresh);
    }
    const old = await verify(user.email, user.code);
    expect(old.error).to.include({ code: 'invalid_code' });
    expect((await verify(user.email, fresh)).response?.status).to.equal(200);
  });

  it('caps wrong codes per email per day across new codes (429 with Retry-After), known email or not', async () => {
    const user = await registered('daily');
    let code = user.code;
    for (let round = 1; round <= DAILY / 5; round++) {
      if (round > 1) {
        await resendVerification({ client: server.client, body: { email: user.email }, throwOnError: true });
        code = codeFrom(await smtp.waitFor(user.email, round));
        codes.push(code);
      }
      for (let i = 1; i <= 5; i++)
        expect((await verify(user.email, wrong(code, i))).error).to.include({ code: 'invalid_code' });
    }
    await resendVerification({ client: server.client, body: { email: user.email }, throwOnError: true });
    const last = codeFrom(await smtp.waitFor(user.email, DAILY / 5 + 1));
    codes.push(last);
    const blocked = await verify(user.email, last);
    expect(blocked.response?.status).to.equal(429);
    expect(blocked.error).to.include({ code: 'too_many_requests' });
    expect(Number(blocked.response?.headers.get('retry-after'))).to.be.within(1, 86400);

    // The same cap on an email no account has: the 429 tells nothing.
    const nobody = `nobody.${user.email}`;
    for (let i = 0; i < DAILY; i++)
      expect((await verify(nobody, wrong('000000', i))).error).to.include({ code: 'invalid_code' });
    const alsoBlocked = await verify(nobody, '000000');
    expect(alsoBlocked.response?.status).to.equal(429);
    expect(alsoBlocked.error).to.include({ code: 'too_many_requests' });
  });

  for (const [name, body] of [
    ['a five-digit code', { code: '12345' }],
    ['a seven-digit code', { code: '1234567' }],
    ['letters in the code', { code: '12a456' }],
    ['a malformed email', { email: 'not-an-email' }],
    ['an unknown field', { extra: 1 }],
  ] as const) {
    it(`refuses ${name} with validation_failed`, async () => {
      const r = await verifyEmail({
        client: server.client,
        body: { email: 'a@example.test', code: '123456', ...body } as never,
      });
      expect(r.response?.status).to.equal(400);
      expect(r.error).to.include({ code: 'validation_failed' });
    });
  }

  it('leaves no raw code or password in any column of any table', async () => {
    expect(codes.length).to.be.greaterThan(8);
    const dump = await server.dumpDatabase();
    expect(dump).to.match(/"email":"life\./); // the dump holds the accounts made above
    for (const code of codes) expect(storedRaw(dump, code), `code ${code} stored raw`).to.equal(false);
    for (const password of passwords) expect(dump).not.to.include(password);
  });
});
