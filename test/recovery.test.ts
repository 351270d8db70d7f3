// forgot-password → email → reset-password, through the generated SDK and a real SMTP server.
import { expect } from 'chai';
import {
  forgotPassword,
  getAccount,
  login,
  register,
  resendVerification,
  resetPassword,
  verifyEmail,
} from '../generated/sdk.gen.ts';
import { DB_LABEL, ON_POSTGRES } from './support/database.ts';
import { codeFrom, startSmtp, storedRaw, type TestSmtp, TIGHT_EMAIL_LIMITS, tokenFrom } from './support/mail.ts';
import { alternate, median, postFrom } from './support/requests.ts';
import { startServer, type TestServer } from './support/server.ts';
import { uniqueUser, verifiedUser } from './support/users.ts';
import { sleep, waitFor } from './support/wait.ts';

const APP_URL = 'https://app.example.test';
const PATH = '/v1/auth/forgot-password';

describe(`password recovery (${DB_LABEL}, real SMTP)`, () => {
  let smtp: TestSmtp;
  let server: TestServer;
  const secrets: string[] = [];

  before(async () => {
    smtp = await startSmtp();
    server = await startServer({ env: { SMTP_URL: smtp.url, APP_URL } });
  });
  after(async () => {
    await server.stop();
    await smtp.close();
  });

  const forgot = (email: string) => forgotPassword({ client: server.client, body: { email } });
  const reset = (token: string, new_password: string) =>
    resetPassword({ client: server.client, body: { token, new_password } });
  const signIn = (username: string, password: string) => login({ client: server.client, body: { username, password } });

  /** Asks for recovery and returns the token from the n-th recovery mail to this address. */
  async function recoveryToken(email: string, nth = 1): Promise<string> {
    const r = await forgot(email);
    expect(r.response?.status).to.equal(202);
    const mail = await waitFor(
      () => smtp.to(email).filter((m) => /reset-password\?token=/.test(m.text))[nth - 1],
      `recovery mail #${nth} to ${email}`,
      15_000,
    );
    const token = tokenFrom(mail);
    secrets.push(token);
    return token;
  }

  async function user(prefix: string) {
    const u = await verifiedUser(server, smtp, prefix);
    secrets.push(u.code, u.password);
    return u;
  }

  it('forgot → email → reset: old JWT 401, old password refused, new one works, the token works once', async () => {
    const u = await user('life');
    expect((await getAccount({ client: server.as(u.token) })).response?.status).to.equal(200);

    const r = await forgot(u.email.toUpperCase());
    expect(r.response?.status).to.equal(202);
    const mail = await smtp.waitFor(u.email, 2);
    expect(mail.subject).to.match(/reset/i);
    expect(mail.text).to.include(`${APP_URL}/reset-password?token=`);
    const token = tokenFrom(mail);
    secrets.push(token);
    expect(token).to.match(/^[A-Za-z0-9_-]{43,}$/); // 32+ random bytes, base64url
    expect(mail.html).to.include(`href="${APP_URL}/reset-password?token=${token}"`);

    const newPassword = `new ${u.password}`;
    secrets.push(newPassword);
    const done = await reset(token, newPassword);
    expect(done.response?.status).to.equal(204);

    const old = await getAccount({ client: server.as(u.token) });
    expect(old.response?.status).to.equal(401);
    expect(old.response?.headers.get('www-authenticate')).to.include('invalid_token');
    expect((await signIn(u.username, u.password)).error).to.include({ code: 'invalid_credentials' });
    const fresh = await signIn(u.username, newPassword);
    expect(fresh.response?.status).to.equal(200);
    expect((await getAccount({ client: server.as(fresh.data!.access_token) })).response?.status).to.equal(200);

    const again = await reset(token, `third ${u.password}`);
    expect(again.response?.status).to.equal(400);
    expect(again.error).to.include({ code: 'invalid_token' });
    expect((await signIn(u.username, newPassword)).response?.status).to.equal(200);
  });

  it('a refused new_password does not use up the token', async () => {
    const u = await user('weak');
    const token = await recoveryToken(u.email);
    for (const weak of ['short', 'password123', `my ${u.username} pw`, `${u.email.split('@')[0]}!!`]) {
      const r = await reset(token, weak);
      expect(r.response?.status, weak).to.equal(400);
      expect(r.error).to.include({ code: 'weak_password' });
    }
    const good = `good ${u.password}`;
    secrets.push(good);
    expect((await reset(token, good)).response?.status).to.equal(204);
    expect((await signIn(u.email, good)).response?.status).to.equal(200);
  });

  it('marks the email verified, and the pending verification code dies', async () => {
    const u = uniqueUser('unver');
    secrets.push(u.password);
    await register({ client: server.client, body: u, throwOnError: true });
    const code = codeFrom(await smtp.waitFor(u.email));
    secrets.push(code);
    expect((await signIn(u.username, u.password)).error).to.include({ code: 'email_not_verified' });

    const token = await recoveryToken(u.email);
    const password = `reset ${u.password}`;
    secrets.push(password);
    expect((await reset(token, password)).response?.status).to.equal(204);
    const session = await signIn(u.username, password);
    expect(session.response?.status).to.equal(200);
    const me = await getAccount({ client: server.as(session.data!.access_token) });
    expect(me.data).to.include({ email_verified: true, has_password: true });
    expect((await verifyEmail({ client: server.client, body: { email: u.email, code } })).error).to.include({
      code: 'invalid_code',
    });
  });

  it('a reset consumes every outstanding token of the account', async () => {
    const u = await user('many');
    const first = await recoveryToken(u.email, 1);
    const second = await recoveryToken(u.email, 2);
    expect(first).not.to.equal(second);
    const password = `second ${u.password}`;
    secrets.push(password);
    expect((await reset(second, password)).response?.status).to.equal(204);
    const r = await reset(first, `first ${u.password}`);
    expect(r.error).to.include({ code: 'invalid_token' });
    expect((await signIn(u.username, password)).response?.status).to.equal(200);
  });

  it('answers one invalid_token for an unknown token, whatever its shape', async () => {
    const u = await user('unk');
    const real = await recoveryToken(u.email);
    const answers = [];
    for (const token of [
      'x',
      `${real}x`,
      real.slice(0, -1),
      'A'.repeat(43),
      real.toUpperCase() === real ? real.toLowerCase() : real.toUpperCase(),
    ]) {
      const r = await reset(token, 'a fine long passphrase 42');
      expect(r.response?.status).to.equal(400);
      answers.push(r.error);
    }
    for (const a of answers) expect(a).to.deep.equal(answers[0]).and.to.include({ code: 'invalid_token' });
  });

  for (const [name, body] of [
    ['a token over 128 characters', { token: 'a'.repeat(129), new_password: 'a fine long passphrase' }],
    ['an empty token', { token: '', new_password: 'a fine long passphrase' }],
    ['a missing new_password', { token: 'abc' }],
    ['a new_password over 256 characters', { token: 'abc', new_password: 'x'.repeat(257) }],
    ['an unknown field', { token: 'abc', new_password: 'a fine long passphrase', email: 'a@example.test' }],
  ] as const) {
    it(`refuses ${name} with validation_failed`, async () => {
      const r = await resetPassword({ client: server.client, body: body as never });
      expect(r.response?.status).to.equal(400);
      expect(r.error).to.include({ code: 'validation_failed' });
    });
  }

  if (ON_POSTGRES) {
    it('answers invalid_token for an expired token (expiry moved into the past on PostgreSQL)', async () => {
      const u = await user('exp');
      const token = await recoveryToken(u.email);
      await server.sql(`update recovery_tokens set expires_at = now() - interval '1 second' where account_id = $1`, [
        u.id,
      ]);
      const r = await reset(token, `expired ${u.password}`);
      expect(r.error).to.include({ code: 'invalid_token' });
      expect((await signIn(u.username, u.password)).response?.status).to.equal(200);
    });

    it('lets a Google-only account (no password) add one through recovery', async () => {
      const u = await user('goog');
      // Shape the account as Google sign-up leaves it: linked, verified, no password.
      await server.sql(`update accounts set password_hash = null, google_sub = $2 where id = $1`, [
        u.id,
        `google-${u.id}`,
      ]);
      expect((await signIn(u.username, u.password)).error).to.include({ code: 'invalid_credentials' });
      const token = await recoveryToken(u.email);
      const password = `added ${u.password}`;
      secrets.push(password);
      expect((await reset(token, password)).response?.status).to.equal(204);
      const session = await signIn(u.username, password);
      expect(session.response?.status).to.equal(200);
      const me = await getAccount({ client: server.as(session.data!.access_token) });
      expect(me.data).to.include({ has_password: true, google_linked: true, can_unlink_google: true });
    });
  }

  it('two resets with one token at once: exactly one 204, and its password is the one set', async () => {
    const u = await user('race');
    const token = await recoveryToken(u.email);
    const passwords = [`one ${u.password}`, `two ${u.password}`];
    secrets.push(...passwords);
    const results = await Promise.all(passwords.map((p) => reset(token, p)));
    const statuses = results.map((r) => r.response?.status);
    expect([...statuses].sort()).to.deep.equal([204, 400]);
    const loser = results.find((r) => r.response?.status === 400)!;
    expect(loser.error).to.include({ code: 'invalid_token' });
    const winner = passwords[statuses.indexOf(204)]!;
    const other = passwords[statuses.indexOf(400)]!;
    expect((await signIn(u.username, winner)).response?.status).to.equal(200);
    expect((await signIn(u.username, other)).error).to.include({ code: 'invalid_credentials' });
  });

  it('answers byte-identical bodies for an existing and an unknown email, and mails only the existing one', async () => {
    const u = await user('enum');
    const nobody = `nobody.${u.email}`;
    const answers = [];
    // The existing account goes last: its mail is the barrier that shows the worker has
    // handled the job queued before it (jobs and the mails they make go out in order).
    for (const email of [nobody, u.email]) {
      const res = await fetch(new URL(PATH, server.url), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email }),
      });
      answers.push({ status: res.status, type: res.headers.get('content-type'), text: await res.text() });
    }
    expect(answers[0]).to.deep.equal(answers[1]);
    expect(answers[0]!.status).to.equal(202);
    secrets.push(tokenFrom(await smtp.waitFor(u.email, 2)));
    await sleep(300);
    expect(smtp.to(nobody)).to.have.length(0);
  });

  it('takes the same time whether or not the account exists (medians within 25%)', async function () {
    // A timing comparison on a shared machine: a neighbour's burst can skew one run's medians. A
    // real oracle (work done only for real accounts) skews every run the same way, so it still
    // fails all three attempts; noise does not.
    this.retries(2);
    const u = await user('time');
    const { a: real, b: unknown } = await alternate(server, PATH, { email: u.email }, { email: `nobody.${u.email}` });
    expect(new Set([...real, ...unknown].map((r) => r.status))).to.deep.equal(new Set([202]));
    expect(new Set([...real, ...unknown].map((r) => r.text)).size).to.equal(1);
    const [mReal, mUnknown] = [median(real.map((r) => r.ms)), median(unknown.map((r) => r.ms))];
    expect(
      Math.abs(mReal - mUnknown) / Math.min(mReal, mUnknown),
      `medians ${mReal.toFixed(2)} ms vs ${mUnknown.toFixed(2)} ms`,
    ).to.be.below(0.25);
    // The real account did get recovery mail: real work was compared against none.
    await smtp.waitFor(u.email, 1 + 32); // its verification mail, then one per request (2 warm-up calls + 30)
    for (const m of smtp.to(u.email).slice(1)) secrets.push(tokenFrom(m));
  });

  it('leaves no raw token, code or password in any column of any table', async () => {
    expect(secrets.length).to.be.greaterThan(20);
    const dump = await server.dumpDatabase();
    expect(dump).to.match(/"email":"life\./);
    for (const s of secrets) expect(storedRaw(dump, s), `secret stored raw: ${s.slice(0, 6)}…`).to.equal(false);
  });
});

describe(`forgotPassword limits (${DB_LABEL})`, () => {
  let smtp: TestSmtp;
  let server: TestServer;
  // TIGHT_EMAIL_LIMITS: both per-email rules are reached in seconds. Each test sends from its
  // own loopback address, so it owns its IP bucket.
  before(async () => {
    smtp = await startSmtp();
    server = await startServer({
      env: { SMTP_URL: smtp.url, ...TIGHT_EMAIL_LIMITS },
    });
  });
  after(async () => {
    await server.stop();
    await smtp.close();
  });

  it('a second request within the window is 429 with Retry-After, for an existing and an unknown email alike', async () => {
    const u = uniqueUser('cool');
    await register({ client: server.client, body: u, throwOnError: true });
    for (const [ip, email] of [
      ['127.0.0.31', u.email],
      ['127.0.0.32', `nobody.${u.email}`],
    ] as const) {
      const first = await postFrom(server, ip, PATH, { email });
      const second = await postFrom(server, ip, PATH, { email: email.toUpperCase() });
      expect([first.status, second.status]).to.deep.equal([202, 429]);
      expect(second.json.code).to.equal('too_many_requests');
      expect(Number(second.headers.get('retry-after'))).to.be.within(1, 2);
    }
    // forgot-password and resend-verification keep separate counters.
    const resend = await resendVerification({ client: server.client, body: { email: u.email } });
    expect(resend.response?.status).to.equal(202);
  });

  it('allows at most 3 (configured) per email per hour: 429 with a Retry-After of about the hour', async () => {
    const email = uniqueUser('hour').email;
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof postFrom>> | undefined;
    for (let i = 0; i < 4; i++) {
      if (i > 0) await sleep(2100); // past the per-2-seconds rule
      last = await postFrom(server, `127.0.0.${33 + i}`, PATH, { email });
      statuses.push(last.status);
    }
    expect(statuses).to.deep.equal([202, 202, 202, 429]);
    expect(Number(last!.headers.get('retry-after'))).to.be.within(3500, 3600);
  });

  it('allows at most 3 (configured) per IP per hour, whatever the emails', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await postFrom(server, '127.0.0.40', PATH, { email: uniqueUser('ip').email })).status);
    expect(statuses).to.deep.equal([202, 202, 202, 429]);
  });
});
