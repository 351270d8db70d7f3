// Mail that gives up cleanly: a recipient the SMTP server refuses for good (550) is given up at
// once, its secret erased and counted in /metrics, while everyone else still gets their mail; a
// recipient refused again and again is given up after OUTBOX_MAX_ATTEMPTS; a message whose code
// expired is never sent; a replaced code's unsent message is dropped; and sent or given-up rows
// and spent tokens are purged after RETENTION_DAYS.
import { expect } from 'chai';
import { forgotPassword, register, resendVerification, resetPassword, verifyEmail } from '../generated/sdk.gen.ts';
import { DB_LABEL, dumpedRows, ON_POSTGRES } from './support/database.ts';
import { codeFrom, startSmtp, type TestSmtp, tokenFrom } from './support/mail.ts';
import { METRICS_TOKEN, scrape } from './support/metrics.ts';
import { startServer, type TestServer } from './support/server.ts';
import { uniqueUser } from './support/users.ts';
import { sleep, waitFor } from './support/wait.ts';

/** Long enough for a retry with backoff (2 s, then 4 s) to have been made, had there been one. */
const RETRY_WINDOW_MS = 7000;

interface OutboxRecord {
  kind: string;
  recipient: string;
  secret: string | null;
  sent_at: unknown;
  failed_at: unknown;
  last_error: string | null;
}

/** The outbox rows of a database dump. */
const outboxRowsIn = (dump: string) => dumpedRows(dump, 'next_attempt_at') as unknown as OutboxRecord[];

function givenUp(samples: Map<string, number>, reason: string): number {
  return samples.get(`rst_mail_given_up_total{reason="${reason}"}`) ?? 0;
}

describe(`outbox give-ups (${DB_LABEL}, real SMTP)`, () => {
  let smtp: TestSmtp;
  let server: TestServer;
  before(async () => {
    smtp = await startSmtp();
    server = await startServer({
      env: { SMTP_URL: smtp.url, METRICS_TOKEN, SWEEP_INTERVAL_SECONDS: '1', RETENTION_DAYS: '30' },
    });
  });
  after(async () => {
    await server.stop();
    await smtp.close();
  });

  it('550 for one address: everyone else gets their mail; that row is given up at once, counted, never retried', async () => {
    const before = givenUp(await scrape(server), 'rejected');
    const refused = uniqueUser('bounce');
    smtp.refuseRecipient(refused.email, 550);
    const others = Array.from({ length: 6 }, (_, i) => uniqueUser(`fine${i}`));
    // The refused one first, so the others are queued behind it in the same delivery round.
    await register({ client: server.client, body: refused, throwOnError: true });
    await Promise.all(others.map((u) => register({ client: server.client, body: u, throwOnError: true })));

    for (const u of others) codeFrom(await smtp.waitFor(u.email, 1, 15_000));
    await waitFor(async () => givenUp(await scrape(server), 'rejected') === before + 1, 'the 550 counted');
    await sleep(RETRY_WINDOW_MS);
    expect(smtp.refusals(refused.email), 'tried once, never again').to.equal(1);
    expect(smtp.to(refused.email)).to.have.length(0);
    const log = await server.waitForLog((l) => l.msg === 'mail given up' && l.reason === 'rejected');
    expect(String(log.error)).to.match(/550/);
    if (ON_POSTGRES) {
      const [row] = await server.sql<OutboxRecord>('select * from outbox where recipient = $1', [refused.email]);
      expect(row!.failed_at).not.to.equal(null);
      expect(row!.sent_at).to.equal(null);
      expect(row!.secret).to.equal(null);
      expect(row!.last_error).to.match(/^rejected: .*550/);
    }
  });

  it('drops the unsent message of a replaced code: only the new code arrives, and it verifies', async () => {
    const user = uniqueUser('replaced');
    smtp.refuseRecipient(user.email, 451);
    await register({ client: server.client, body: user, throwOnError: true });
    await waitFor(() => smtp.refusals(user.email) >= 1, 'the first code refused for now');
    await resendVerification({ client: server.client, body: { email: user.email }, throwOnError: true });
    // The job that replaces the code runs at once, and the new message bounces too, for now.
    await waitFor(() => smtp.refusals(user.email) >= 2, 'the new code refused for now');
    smtp.refuseRecipient(user.email, undefined);
    const mail = await smtp.waitFor(user.email, 1, 15_000);
    await sleep(RETRY_WINDOW_MS);
    expect(smtp.to(user.email), 'the replaced code was never sent').to.have.length(1);
    const ok = await verifyEmail({ client: server.client, body: { email: user.email, code: codeFrom(mail) } });
    expect(ok.response!.status).to.equal(200);
  });

  it('drops the recovery mail not yet sent once a reset has spent every token', async () => {
    const user = uniqueUser('spent');
    await register({ client: server.client, body: user, throwOnError: true });
    await smtp.waitFor(user.email);
    await forgotPassword({ client: server.client, body: { email: user.email }, throwOnError: true });
    const token = tokenFrom(await smtp.waitFor(user.email, 2));
    smtp.refuseRecipient(user.email, 451);
    await forgotPassword({ client: server.client, body: { email: user.email }, throwOnError: true });
    await waitFor(() => smtp.refusals(user.email) >= 1, 'the second recovery mail refused for now');
    const reset = await resetPassword({
      client: server.client,
      body: { token, new_password: `renewed ${user.password}` },
    });
    expect(reset.response!.status).to.equal(204);
    smtp.refuseRecipient(user.email, undefined);
    await sleep(RETRY_WINDOW_MS);
    expect(smtp.to(user.email), 'the spent link never went out').to.have.length(2);
  });

  if (ON_POSTGRES) {
    it('never sends a message whose code expired before it could go out; its secret is erased (SQL)', async () => {
      const before = givenUp(await scrape(server), 'expired');
      const user = uniqueUser('late');
      smtp.refuseRecipient(user.email, 451);
      await register({ client: server.client, body: user, throwOnError: true });
      await waitFor(() => smtp.refusals(user.email) >= 1, 'a refused attempt');
      // The code expires (moved into the past) while the message waits for its retry.
      await server.sql(
        `update verification_codes set expires_at = now() - interval '1 second'
        where account_id = (select id from accounts where email = $1)`,
        [user.email],
      );
      await server.sql(`update outbox set expires_at = now() - interval '1 second' where recipient = $1`, [user.email]);
      smtp.refuseRecipient(user.email, undefined);
      await waitFor(async () => givenUp(await scrape(server), 'expired') === before + 1, 'the expiry counted');
      await sleep(RETRY_WINDOW_MS);
      expect(smtp.to(user.email)).to.have.length(0);
      const [row] = await server.sql<OutboxRecord>('select * from outbox where recipient = $1', [user.email]);
      expect(row!.failed_at).not.to.equal(null);
      expect(row!.secret).to.equal(null);
      expect(row!.last_error).to.match(/^expired/);
    });

    it('purges sent and given-up rows and spent tokens after RETENTION_DAYS, keeping recent ones (SQL)', async () => {
      const old = uniqueUser('retold');
      const recent = uniqueUser('retnew');
      for (const u of [old, recent]) {
        await register({ client: server.client, body: u, throwOnError: true });
        await smtp.waitFor(u.email);
        await forgotPassword({ client: server.client, body: { email: u.email }, throwOnError: true });
        await smtp.waitFor(u.email, 2);
      }
      const accountOf = `(select id from accounts where email = $1)`;
      await server.sql(`update outbox set sent_at = now() - interval '31 days' where recipient = $1`, [old.email]);
      await server.sql(`update outbox set failed_at = now() - interval '31 days' where failed_at is not null`);
      await server.sql(
        `update recovery_tokens set created_at = now() - interval '32 days', expires_at = now() - interval '31 days'
         where account_id = ${accountOf}`,
        [old.email],
      );
      await waitFor(
        async () => (await server.sql('select 1 from outbox where recipient = $1', [old.email])).length === 0,
        'the old mail purged',
      );
      await waitFor(
        async () => (await server.sql('select 1 from outbox where failed_at is not null')).length === 0,
        'the old given-up rows purged',
      );
      await waitFor(
        async () =>
          (await server.sql(`select 1 from recovery_tokens where account_id = ${accountOf}`, [old.email])).length === 0,
        'the old token purged',
      );
      expect(await server.sql('select 1 from outbox where recipient = $1', [recent.email])).to.have.length(2);
      expect(
        await server.sql(`select 1 from recovery_tokens where account_id = ${accountOf}`, [recent.email]),
      ).to.have.length(1);
    });
  }

  it('leaves no secret in any row that was sent or given up', async () => {
    const dump = await server.dumpDatabase();
    const rows = outboxRowsIn(dump);
    expect(rows.length).to.be.greaterThan(3);
    for (const row of rows)
      if (row.sent_at !== null || row.failed_at !== null)
        expect(row.secret, `${row.kind} to ${row.recipient}`).to.equal(null);
  });
});

describe(`outbox attempts cap (${DB_LABEL}, real SMTP, OUTBOX_MAX_ATTEMPTS=2)`, () => {
  let smtp: TestSmtp;
  let server: TestServer;
  before(async () => {
    smtp = await startSmtp();
    server = await startServer({ env: { SMTP_URL: smtp.url, METRICS_TOKEN, OUTBOX_MAX_ATTEMPTS: '2' } });
  });
  after(async () => {
    await server.stop();
    await smtp.close();
  });

  it('gives a message up after the last allowed attempt (451 each time), erases its secret, counts it', async () => {
    const user = uniqueUser('tries');
    smtp.refuseRecipient(user.email, 451);
    const other = uniqueUser('tries_ok');
    await register({ client: server.client, body: user, throwOnError: true });
    await register({ client: server.client, body: other, throwOnError: true });
    await smtp.waitFor(other.email);
    await waitFor(async () => givenUp(await scrape(server), 'attempts') === 1, 'given up after 2 attempts', 15_000);
    await sleep(RETRY_WINDOW_MS);
    expect(smtp.refusals(user.email)).to.equal(2);
    const rows = outboxRowsIn(await server.dumpDatabase()).filter((r) => r.recipient === user.email);
    expect(rows).to.have.length(1);
    expect(rows[0]!.failed_at).not.to.equal(null);
    expect(rows[0]!.secret).to.equal(null);
    expect(rows[0]!.last_error).to.match(/^attempts: .*451/);
  });
});
