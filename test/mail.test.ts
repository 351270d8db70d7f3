// Email delivery: the messages themselves, retries through an SMTP outage, exactly-once delivery
// (also with two instances on one database), console delivery without SMTP_URL, and secrets
// erased from the outbox once sent.
import { expect } from 'chai';
import { forgotPassword, register, verifyEmail } from '../generated/sdk.gen.ts';
import { DB_LABEL, ON_POSTGRES } from './support/database.ts';
import { codeFrom, startSmtp, storedRaw, type TestSmtp, tokenFrom } from './support/mail.ts';
import { startServer, type TestServer } from './support/server.ts';
import { uniqueUser } from './support/users.ts';
import { sleep, waitFor } from './support/wait.ts';

const APP_URL = 'https://accounts.example.test/app';
const MAIL_FROM = 'rst auth tests <auth@example.test>';
/** Longer than one poll of the delivery worker (1 s) twice over: time for a duplicate to show. */
const SETTLE_MS = 2500;

describe(`mail delivery (${DB_LABEL}, real SMTP)`, () => {
  let smtp: TestSmtp;
  let server: TestServer;
  const secrets: string[] = [];

  before(async () => {
    smtp = await startSmtp();
    server = await startServer({ env: { SMTP_URL: smtp.url, APP_URL, MAIL_FROM } });
  });
  after(async () => {
    await server.stop();
    await smtp.close();
  });

  it('sends the verification code as plain text and HTML, from MAIL_FROM, with a clear subject', async () => {
    const user = uniqueUser('tpl');
    await register({ client: server.client, body: user, throwOnError: true });
    const mail = await smtp.waitFor(user.email);
    const code = codeFrom(mail);
    secrets.push(code);
    expect(mail.from).to.equal(MAIL_FROM);
    expect(mail.headers.to).to.equal(user.email);
    expect(mail.subject).to.equal('Your rst auth verification code');
    expect(mail.headers['content-type']).to.match(/^multipart\/alternative/);
    expect(mail.headers['auto-submitted']).to.equal('auto-generated');
    expect(mail.text)
      .to.include(user.username)
      .and.to.include(code)
      .and.to.match(/10 minutes/);
    expect(mail.html).to.match(new RegExp(`>${code}<`));
    // The code is nowhere in the server's own output (logs) when mail goes over SMTP.
    expect(server.output()).not.to.include(code);
  });

  it('sends the recovery link under APP_URL and the token itself, as plain text and HTML', async () => {
    const user = uniqueUser('tplr');
    await register({ client: server.client, body: user, throwOnError: true });
    secrets.push(codeFrom(await smtp.waitFor(user.email)));
    await forgotPassword({ client: server.client, body: { email: user.email }, throwOnError: true });
    const mail = await smtp.waitFor(user.email, 2);
    const token = tokenFrom(mail);
    secrets.push(token);
    expect(mail.subject).to.equal('Reset your rst auth password');
    expect(mail.text)
      .to.include(`${APP_URL}/reset-password?token=${token}`)
      .and.to.match(/30 minutes/);
    expect(mail.html)
      .to.include(`<a href="${APP_URL}/reset-password?token=${token}">`)
      .and.to.include(`<code>${token}</code>`);
    expect(server.output()).not.to.include(token);
  });

  it('SMTP down at registration: still 201; the email arrives once SMTP is back, exactly once', async () => {
    await smtp.down();
    const user = uniqueUser('down');
    const created = await register({ client: server.client, body: user });
    expect(created.response?.status).to.equal(201);
    await server.waitForLog((l) => l.msg === 'mail delivery failed; will retry' && l.kind === 'verify_email', 15_000);
    // Requests keep being turned into codes and tokens while SMTP is down: the recovery mail is
    // made (and fails) before SMTP comes back.
    expect((await forgotPassword({ client: server.client, body: { email: user.email } })).response?.status).to.equal(
      202,
    );
    await server.waitForLog((l) => l.msg === 'mail delivery failed; will retry' && l.kind === 'reset_password', 15_000);
    expect(smtp.to(user.email)).to.have.length(0);
    await smtp.up();

    await smtp.waitFor(user.email, 2, 30_000);
    await sleep(SETTLE_MS);
    const mails = smtp.to(user.email);
    expect(mails).to.have.length(2);
    const code = codeFrom(mails.find((m) => /verification code is/.test(m.text))!);
    secrets.push(code, tokenFrom(mails.find((m) => /reset-password/.test(m.text))!));
    expect((await verifyEmail({ client: server.client, body: { email: user.email, code } })).response?.status).to.equal(
      200,
    );
  });

  it('SMTP refusing (451): retried with backoff, then delivered exactly once', async () => {
    smtp.refuse(true);
    const before = smtp.refusals();
    const user = uniqueUser('busy');
    try {
      await register({ client: server.client, body: user, throwOnError: true });
      await waitFor(() => smtp.refusals() > before, 'a refused delivery');
      expect(smtp.refusals()).to.be.greaterThan(before);
    } finally {
      smtp.refuse(false);
    }
    secrets.push(codeFrom(await smtp.waitFor(user.email, 1, 20_000)));
    await sleep(SETTLE_MS);
    expect(smtp.to(user.email)).to.have.length(1);
    const retried = server.logs().filter((l) => l.msg === 'mail delivery failed; will retry');
    expect(retried.length).to.be.greaterThan(0);
    for (const l of retried) expect(l.retryIn).to.be.a('number').within(1, 600);
  });

  if (ON_POSTGRES) {
    it('keeps an outbox row as a record once sent, with the secret erased', async () => {
      const rows = await server.sql<{ kind: string; sent_at: Date | null; secret: string | null }>(
        'select kind, sent_at, secret from outbox',
      );
      expect(rows.length).to.be.greaterThan(3);
      for (const row of rows) {
        expect(row.sent_at, row.kind).not.to.equal(null);
        expect(row.secret).to.equal(null);
      }
      // Jobs (forgot / resend requests) leave no row behind: no record of typed-in addresses.
      for (const row of rows) expect(['verify_email', 'reset_password']).to.include(row.kind);
    });
  }

  it('leaves no raw code or token in any column of any table once sent', async () => {
    expect(secrets.length).to.be.greaterThan(4);
    const dump = await server.dumpDatabase();
    expect(dump).to.match(/"email":"tpl\./);
    for (const s of secrets) expect(storedRaw(dump, s), `secret stored raw: ${s.slice(0, 6)}…`).to.equal(false);
  });
});

describe(`mail delivery to the console (${DB_LABEL}, SMTP_URL unset)`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server.stop();
  });

  it('prints the verification mail to stdout, and its code verifies the account', async () => {
    const user = uniqueUser('cons');
    await register({ client: server.client, body: user, throwOnError: true });
    const mail = await server.consoleMail(user.email);
    expect(mail.subject).to.equal('Your rst auth verification code');
    const code = /verification code is: (\d{6})/.exec(mail.text)![1]!;
    expect((await verifyEmail({ client: server.client, body: { email: user.email, code } })).response?.status).to.equal(
      200,
    );
  });
});

if (ON_POSTGRES) {
  describe('mail delivery with two instances on one database (PostgreSQL, real SMTP)', () => {
    let smtp: TestSmtp;
    let a: TestServer;
    let b: TestServer;
    before(async () => {
      smtp = await startSmtp();
      a = await startServer({ env: { SMTP_URL: smtp.url } });
      b = await startServer({ env: { SMTP_URL: smtp.url }, shareDatabaseWith: a });
    });
    after(async () => {
      await b?.stop();
      await a?.stop();
      await smtp.close();
    });

    it('sends every message exactly once, whichever instance queued it', async () => {
      const users = Array.from({ length: 12 }, (_, i) => uniqueUser(`two${i}`));
      await Promise.all(users.map((u, i) => register({ client: (i % 2 ? a : b).client, body: u, throwOnError: true })));
      await Promise.all(users.map((u) => smtp.waitFor(u.email)));
      await Promise.all(
        users.map((u, i) =>
          forgotPassword({ client: (i % 2 ? b : a).client, body: { email: u.email }, throwOnError: true }),
        ),
      );
      await Promise.all(users.map((u) => smtp.waitFor(u.email, 2)));
      await sleep(SETTLE_MS);
      for (const u of users) {
        const mails = smtp.to(u.email);
        expect(mails, u.email).to.have.length(2);
        codeFrom(mails[0]!);
        tokenFrom(mails[1]!);
      }
      // Each instance records what it sent: 24 messages, 24 sends between the two.
      const sends = [...a.logs(), ...b.logs()].filter((l) => l.msg === 'mail sent');
      expect(sends).to.have.length(users.length * 2);
      expect(new Set(sends.map((l) => l.mailId)).size).to.equal(users.length * 2);
    });
  });
}
