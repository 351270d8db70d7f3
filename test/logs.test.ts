// Logs: one pino JSON line per request with request id, operation, status, duration and pid, and
// no secret anywhere in a server's whole output. The server runs a full lifecycle at LOG_LEVEL=trace
// with mail going over SMTP to a server inside this test (so the console mailer, which prints
// codes on purpose for `npm start`, is not in play), including failed deliveries, refused
// credentials and a password reset; then every password, code, JWT, API key and recovery token
// used is searched for in everything the process wrote.
import { expect } from 'chai';
import {
  createApiKey,
  forgotPassword,
  getAccount,
  introspect,
  listApiKeys,
  login,
  register,
  resetPassword,
  revokeApiKey,
  verifyEmail,
} from '../generated/sdk.gen.ts';
import { DB_LABEL } from './support/database.ts';
import { codeFrom, startSmtp, type TestSmtp, tokenFrom } from './support/mail.ts';
import { startServer, type TestServer } from './support/server.ts';
import { createServiceKey, migratedDatabase } from './support/serviceKeys.ts';
import { uniqueUser } from './support/users.ts';

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** The secret as a token of its own (not a piece of a longer word, id or number). */
const appearsIn = (text: string, secret: string) =>
  new RegExp(`(?<![0-9A-Za-z])${escapeRegExp(secret)}(?![0-9A-Za-z])`).test(text);

describe(`logs (${DB_LABEL})`, () => {
  let smtp: TestSmtp;
  let server: TestServer;
  let output = '';
  const secrets: { what: string; value: string }[] = [];
  const keep = (what: string, value: string) => {
    secrets.push({ what, value });
    return value;
  };
  const requestId = `logs-test.${Date.now()}`;

  before(async function () {
    this.timeout(90_000);
    smtp = await startSmtp();
    const database = await migratedDatabase();
    const serviceKey = keep('service key', await createServiceKey(database, 'logs'));
    server = await startServer({ database, env: { SMTP_URL: smtp.url, LOG_LEVEL: 'trace' } });

    // Register and verify, with the code from the mail that went over SMTP.
    const user = uniqueUser('logs');
    keep('password', user.password);
    await register({ client: server.client, body: user, headers: { 'X-Request-Id': requestId }, throwOnError: true });
    const code = keep('verification code', codeFrom(await smtp.waitFor(user.email)));
    const wrongCode = keep('wrong code', code === '000000' ? '111111' : '000000');
    expect(
      (await verifyEmail({ client: server.client, body: { email: user.email, code: wrongCode } })).response!.status,
    ).to.equal(400);
    await verifyEmail({ client: server.client, body: { email: user.email, code }, throwOnError: true });

    // Sign in, fail to sign in, present refused credentials.
    const token = keep(
      'JWT',
      (
        await login({
          client: server.client,
          body: { username: user.username, password: user.password },
          throwOnError: true,
        })
      ).data.access_token,
    );
    for (const wrong of ['Wrong-password-1', 'Wrong-password-2']) {
      keep('wrong password', wrong);
      expect(
        (await login({ client: server.client, body: { username: user.username, password: wrong } })).response!.status,
      ).to.equal(401);
    }
    const forged = keep('forged JWT', `${token.slice(0, -6)}AAAAAA`);
    expect((await getAccount({ client: server.as(forged) })).response!.status).to.equal(401);
    await getAccount({ client: server.as(token), throwOnError: true });

    // An API key: created, used in both header forms, listed, revoked, then refused.
    const key = (await createApiKey({ client: server.as(token), body: { name: 'logs test' }, throwOnError: true }))
      .data;
    keep('raw API key', key.raw_key);
    await getAccount({ client: server.as(key.raw_key), throwOnError: true });
    await getAccount({ client: server.client, headers: { 'X-API-Key': key.raw_key }, throwOnError: true });
    await listApiKeys({ client: server.as(token), throwOnError: true });
    // Introspection: the service key as caller, the API key inspected; a made-up service key refused.
    await introspect({ client: server.as(serviceKey), body: { token: key.raw_key }, throwOnError: true });
    const wrongService = keep(
      'refused service key',
      `${serviceKey.slice(0, -1)}${serviceKey.endsWith('A') ? 'B' : 'A'}`,
    );
    expect((await introspect({ client: server.as(wrongService), body: { token } })).response!.status).to.equal(401);
    await revokeApiKey({ client: server.as(token), path: { key_id: key.id }, throwOnError: true });
    expect(
      (await getAccount({ client: server.client, headers: { 'X-API-Key': key.raw_key } })).response!.status,
    ).to.equal(401);

    // Recovery, with the first delivery refused by the SMTP server (logged, then retried).
    smtp.refuse(true);
    await forgotPassword({ client: server.client, body: { email: user.email }, throwOnError: true });
    await server.waitForLog((l) => l.msg === 'mail delivery failed; will retry', 15_000);
    smtp.refuse(false);
    const resetToken = keep('recovery token', tokenFrom(await smtp.waitFor(user.email, 2, 30_000)));
    const newPassword = keep('new password', `new ${user.password}`);
    const weak = keep('refused new password', 'password123');
    expect(
      (await resetPassword({ client: server.client, body: { token: resetToken, new_password: weak } })).response!
        .status,
    ).to.equal(400);
    await resetPassword({
      client: server.client,
      body: { token: resetToken, new_password: newPassword },
      throwOnError: true,
    });
    expect(
      (await resetPassword({ client: server.client, body: { token: resetToken, new_password: newPassword } })).response!
        .status,
    ).to.equal(400);
    keep(
      'new JWT',
      (
        await login({
          client: server.client,
          body: { username: user.email, password: newPassword },
          throwOnError: true,
        })
      ).data.access_token,
    );

    // A body that is not JSON, carrying a password: refused before any handler sees it.
    const junk = keep('password in a malformed body', 'junk-body-password-7f3a9c');
    const bad = await fetch(`${server.url}/v1/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: `{"username":"x","password":"${junk}"`,
    });
    expect(bad.status).to.equal(400);

    expect(await server.stop()).to.equal(0);
    output = server.output();
  });
  after(async () => {
    if (server?.child.exitCode === null) await server.stop();
    await smtp?.close();
  });

  it('wrote only JSON lines (no mail printed to the console in SMTP mode)', () => {
    const lines = output.split('\n').filter((l) => l.trim() !== '');
    const notJson = lines.filter((l) => !l.startsWith('{') && !/^rst auth listening on /.test(l));
    expect(notJson).to.deep.equal([]);
    expect(output).not.to.include('rst auth mail');
  });

  it('logs each request with request id, operation, status, duration and pid', () => {
    const requests = server.logs().filter((l) => l.msg === 'request');
    expect(requests.length).to.be.at.least(20);
    for (const line of requests) {
      expect(line).to.include.keys('requestId', 'method', 'path', 'status', 'ms', 'pid', 'time');
      expect(line.ms).to.be.a('number');
      expect(line.pid).to.equal(server.child.pid);
    }
    const registered = requests.find((l) => l.requestId === requestId);
    expect(registered).to.include({ operation: 'register', status: 201, method: 'POST', path: '/v1/auth/register' });
    expect(requests.filter((l) => l.operation === 'login' && l.status === 401)).to.have.length(2);
    expect(requests.some((l) => l.operation === 'getAccount' && l.status === 401)).to.equal(true);
  });

  it('logs the refused delivery as a warning', () => {
    expect(server.logs().some((l) => l.level === 40 && l.msg === 'mail delivery failed; will retry')).to.equal(true);
  });

  it('contains no password, code, JWT, API key or recovery token used in the run', () => {
    expect(secrets.length).to.be.at.least(12);
    for (const { what, value } of secrets)
      expect(appearsIn(output, value), `${what} found in the output`).to.equal(false);
  });

  it('contains nothing shaped like a JWT, a raw API key or a Bearer credential', () => {
    expect(output).not.to.match(/eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\./);
    expect(output).not.to.match(/rst_[0-9A-Za-z]{42}/);
    expect(output).not.to.match(/rst_svc_[0-9A-Za-z]{42}/);
    expect(output).not.to.match(/bearer\s+(?!\[redacted)[A-Za-z0-9._~+/-]{8,}/i);
  });
});
