// The database layer leaves no session state on its connections, so it runs behind a pooler in
// transaction mode (CI's third run: through PgBouncer): statement_timeout is never a startup
// parameter nor a SET, only SET LOCAL inside each transaction, and the hot path's named
// statements give way to unnamed ones where the pooler cannot keep them. PostgreSQL only (PGlite
// is in-process: there is no connection to pool).
import { expect } from 'chai';
import { openDatabase, selectRows, STATEMENT_TIMEOUT_MS, type Db } from '../db/knex.ts';
import { freshDatabase, ON_POSTGRES, THROUGH_POOLER, type TestDatabase } from './support/database.ts';

if (ON_POSTGRES) {
  describe(`the database layer (PostgreSQL${THROUGH_POOLER ? ' through PgBouncer' : ''})`, () => {
    let database: TestDatabase;
    let db: Db;
    before(async () => {
      database = await freshDatabase();
      db = openDatabase({ databaseUrl: database.url, dataDir: '' });
    });
    after(async () => {
      await db?.destroy();
      await database?.drop();
    });

    const timeoutNow = async (on: Db | Parameters<Parameters<Db['transaction']>[0]>[0]) =>
      ((await on.raw('show statement_timeout')) as { rows: { statement_timeout: string }[] }).rows[0]!
        .statement_timeout;

    it('bounds every transaction with SET LOCAL, and leaves the sessions as they were', async () => {
      await db.transaction(async (trx) => {
        expect(await timeoutNow(trx)).to.equal(`${STATEMENT_TIMEOUT_MS / 1000}s`);
      });
      // Outside transactions, on whichever connection (the pool's, or the pooler's server ones):
      // the role's own setting, none here, and never a leftover of a transaction.
      const outside = await Promise.all(Array.from({ length: 20 }, () => timeoutNow(db)));
      expect(new Set(outside)).to.deep.equal(new Set(['0']));
    });

    it('cancels a statement stuck in a transaction at the bound, and the connection serves on', async function () {
      this.timeout(20_000);
      const started = performance.now();
      const err = await db
        .transaction((trx) => trx.raw('select pg_sleep(30)'))
        .then(
          () => undefined,
          (e: { code?: string }) => e,
        );
      expect(err?.code, 'canceling statement due to statement timeout').to.equal('57014');
      expect(performance.now() - started).to.be.within(STATEMENT_TIMEOUT_MS - 500, STATEMENT_TIMEOUT_MS + 2000);
      expect((await db.raw('select 1 as one')).rows).to.deep.equal([{ one: 1 }]);
    });

    for (const preparedStatements of [true, false]) {
      it(`answers the hot path's lookups ${preparedStatements ? 'as named statements (unnamed once a pooler shows it cannot keep them)' : 'as unnamed statements (DATABASE_PREPARED_STATEMENTS=false)'}`, async () => {
        const own = openDatabase({ databaseUrl: database.url, dataDir: '', preparedStatements });
        try {
          const lookup = { name: 'rst_test_lookup', text: 'select $1::int + 1 as n' };
          const answers = await Promise.all(
            Array.from({ length: 200 }, (_, i) => selectRows<{ n: number }>(own, lookup, [i])),
          );
          expect(answers.map((rows) => rows[0]!.n)).to.deep.equal(Array.from({ length: 200 }, (_, i) => i + 1));
        } finally {
          await own.destroy();
        }
      });
    }
  });
}
