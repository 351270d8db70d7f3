// Concurrency on PostgreSQL itself: two resets with two different live recovery tokens of one
// account, run at the same moment many times, never deadlock (locks are taken account row first);
// and a deadlock forced from SQL against a reset is retried once (the whole transaction), and a
// second one in a row is 503 with Retry-After. PGlite runs one connection, so nothing can
// deadlock there: PostgreSQL only.
import { expect } from 'chai';
import type pg from 'pg';
import { forgotPassword, register, resetPassword } from '../generated/sdk.gen.ts';
import { directSession, ON_POSTGRES } from './support/database.ts';
import { tokenFrom } from './support/mail.ts';
import { startServer, type TestServer } from './support/server.ts';
import { registeredUser, uniqueUser } from './support/users.ts';
import { waitFor } from './support/wait.ts';

/** Asks for a recovery mail and waits for it: the n-th mail to `email`. */
async function recoveryToken(server: TestServer, email: string, nth: number): Promise<string> {
  await forgotPassword({ client: server.client, body: { email }, throwOnError: true });
  return tokenFrom(await server.consoleMail(email, nth));
}

const reset = async (server: TestServer, token: string, newPassword: string) => {
  const { response, error } = await resetPassword({
    client: server.client,
    body: { token, new_password: newPassword },
  });
  return {
    status: response!.status,
    code: (error as { code?: string } | undefined)?.code,
    retryAfter: response!.headers.get('retry-after'),
  };
};

if (ON_POSTGRES) {
  describe('deadlocks and retries (PostgreSQL)', () => {
    let server: TestServer;
    before(async () => {
      server = await startServer();
    });
    after(async () => {
      await server?.stop();
    });

    it('runs two resets with two live tokens of one account at once, 30 times, without a 5xx', async function () {
      this.timeout(180_000);
      const user = await registeredUser(server, 'twin');
      let mails = 1; // the verification mail
      for (let round = 0; round < 30; round++) {
        const a = await recoveryToken(server, user.email, ++mails);
        const b = await recoveryToken(server, user.email, ++mails);
        const results = await Promise.all([
          reset(server, a, `first new passphrase ${round}`),
          reset(server, b, `second new passphrase ${round}`),
        ]);
        const statuses = results.map((r) => r.status).sort();
        // Exactly one wins; the other finds its token used up by the winner. Never a 5xx.
        expect(statuses, `round ${round}: ${JSON.stringify(results)}`).to.deep.equal([204, 400]);
        for (const r of results) if (r.status === 400) expect(r.code).to.equal('invalid_token');
      }
    });

    describe('a deadlock forced from SQL', () => {
      let holder: pg.Client;
      beforeEach(async () => {
        holder = await directSession(server.database.url!);
      });
      afterEach(async () => {
        await holder.query('rollback').catch(() => {});
        await holder.end();
      });

      /** The server's session waiting on a lock (the holder's), once it is there. */
      const serverWaiting = () =>
        waitFor(
          async () =>
            (
              await server.sql<{ pid: number }>(
                `select pid from pg_stat_activity
                 where datname = current_database() and wait_event_type = 'Lock' and pid <> $1`,
                [(holder as unknown as { processID: number }).processID],
              )
            ).length > 0,
          'the reset waiting on the held lock',
          10_000,
        );

      /**
       * An unverified account (its verification code row is what the holder locks) and a live
       * recovery token for it. The reset's transaction locks the account, then deletes that code:
       * it waits for the holder, which then asks for the account row, closing the cycle. The
       * reset waited first, so PostgreSQL's deadlock check (deadlock_timeout, 1 s) aborts it.
       */
      async function trap() {
        const user = uniqueUser('dead');
        const created = await register({ client: server.client, body: user, throwOnError: true });
        const token = await recoveryToken(server, user.email, 2);
        await holder.query('begin');
        const codes = await holder.query('select 1 from verification_codes where account_id = $1 for update', [
          created.data.id,
        ]);
        expect(codes.rowCount, 'the account has a pending verification code').to.equal(1);
        const closeCycle = async () => {
          await serverWaiting();
          await holder.query('savepoint cycle');
          await holder.query('select 1 from accounts where id = $1 for update', [created.data.id]);
          // Deadlock reported to the reset; give the account row back, keep the code row.
          await holder.query('rollback to savepoint cycle');
        };
        return { user, token, closeCycle };
      }

      it('retries the reset once after a deadlock, and it succeeds', async function () {
        this.timeout(60_000);
        const { token, closeCycle } = await trap();
        const retries = () => server.logs().filter((l) => String(l.msg).startsWith('transaction retried'));
        const before = retries().length;
        const pending = reset(server, token, 'a passphrase after a deadlock');
        await closeCycle();
        // The retry waits on the code row again: release it.
        await serverWaiting();
        await holder.query('commit');
        expect(await pending).to.deep.include({ status: 204 });
        const retried = await waitFor(() => retries()[before], 'the retry logged');
        expect((retried.err as { errorCode?: string }).errorCode).to.equal('40P01');
        expect(retries().length, 'retried once').to.equal(before + 1);
        expect((await reset(server, token, 'once more')).status, 'the token was used once').to.equal(400);
      });

      it('answers 503 with Retry-After when the retry deadlocks too, and leaves the token usable', async function () {
        this.timeout(60_000);
        const { token, closeCycle } = await trap();
        const pending = reset(server, token, 'a passphrase after two deadlocks');
        await closeCycle();
        await closeCycle();
        const result = await pending;
        await holder.query('commit');
        expect(result).to.deep.equal({ status: 503, code: 'service_unavailable', retryAfter: result.retryAfter });
        expect(Number(result.retryAfter)).to.be.at.least(1);
        // Both attempts rolled back: the token is still live.
        expect(await reset(server, token, 'a passphrase at last')).to.deep.include({ status: 204 });
        expect(server.child.exitCode).to.equal(null);
      });
    });
  });
}
