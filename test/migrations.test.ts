// Migrations run up, down and up again on a real database (PGlite, or a fresh PostgreSQL database
// when DATABASE_URL is set), with rows in the tables, so a `down` that no longer matches its `up`
// is found here rather than during a rollback in production.
import { expect } from 'chai';
import { openDatabase, type Db } from '../db/knex.ts';
import { migrate, rollbackAll } from '../db/migrate.ts';
import { migrationSource } from '../db/migrations/index.ts';
import { DB_LABEL, freshDatabase } from './support/database.ts';

const TABLES = [
  'accounts',
  'api_keys',
  'outbox',
  'rate_limits',
  'recovery_tokens',
  'service_keys',
  'sessions',
  'settings',
  'spent_refresh_tokens',
  'verification_codes',
];

const tables = async (db: Db): Promise<string[]> =>
  (
    await db.raw(
      `select table_name from information_schema.tables where table_schema = 'public' and table_name not like 'knex_%' order by 1`,
    )
  ).rows.map((r: { table_name: string }) => r.table_name);

const columns = async (db: Db, table: string): Promise<string[]> =>
  (
    await db.raw(`select column_name from information_schema.columns where table_name = ? order by 1`, [table])
  ).rows.map((r: { column_name: string }) => r.column_name);

const session = (accountId: string, refreshHash: string) => ({
  account_id: accountId,
  method: 'password',
  refresh_hash: refreshHash,
  expires_at: new Date(Date.now() + 86400_000),
  absolute_expires_at: new Date(Date.now() + 2 * 86400_000),
});

const SESSIONS = '20261201101500_create_sessions';

/** Rolls back, one at a time, every migration after `name`, then `name` itself. */
async function rollBackThrough(db: Db, name: string): Promise<void> {
  const names = await migrationSource.getMigrations([]);
  expect(names).to.include(name);
  for (let i = names.length - 1; i >= names.indexOf(name); i--) await db.migrate.down({ migrationSource });
}

describe(`migrations (${DB_LABEL})`, () => {
  it('migrate, roll everything back, migrate again', async function () {
    this.timeout(60_000);
    const database = await freshDatabase();
    const db = openDatabase({ databaseUrl: database.url, dataDir: database.dataDir ?? '' });
    try {
      await migrate(db);
      expect(await tables(db)).to.deep.equal(TABLES);
      expect(await columns(db, 'accounts')).not.to.include('token_version');
      await rollbackAll(db);
      expect(await tables(db)).to.deep.equal([]);
      await migrate(db);
      const [account] = await db('accounts').insert({ username: 'again', email: 'again@example.test' }).returning('id');
      await db('sessions').insert(session(account.id, 'h1'));
      expect(await tables(db)).to.have.length(TABLES.length);
    } finally {
      await db.destroy();
      await database.drop();
    }
  });

  it('rolls the sessions migration back over live rows and forward again', async function () {
    this.timeout(60_000);
    const database = await freshDatabase();
    const db = openDatabase({ databaseUrl: database.url, dataDir: database.dataDir ?? '' });
    try {
      await migrate(db);
      const [account] = await db('accounts').insert({ username: 'kept', email: 'kept@example.test' }).returning('id');
      const [row] = await db('sessions').insert(session(account.id, 'h2')).returning('id');
      await db('spent_refresh_tokens').insert({ token_hash: 'h0', session_id: row.id });
      // The same refresh hash twice is refused by the database itself.
      let duplicate: unknown;
      await db('sessions')
        .insert(session(account.id, 'h2'))
        .catch((err: unknown) => {
          duplicate = err;
        });
      expect((duplicate as { code?: string })?.code).to.equal('23505');

      // A given-up message: rolled back past the outbox give-up migration, it must stay out of
      // the old worker's claim (recorded as finished).
      await db('outbox').insert({ kind: 'verify_email', recipient: 'kept@example.test', failed_at: db.fn.now() });
      await rollBackThrough(db, SESSIONS);
      expect(await tables(db)).not.to.include('sessions');
      expect(await db('outbox').whereNull('sent_at').count({ n: '*' })).to.satisfy(
        (r: { n: unknown }[]) => Number(r[0]!.n) === 0,
      );
      const [back] = await db('accounts').where({ id: account.id }).select('token_version');
      expect(back).to.deep.equal({ token_version: 0 });
      await migrate(db);
      expect(await db('accounts').where({ id: account.id }).first('username')).to.deep.equal({ username: 'kept' });
      // Deleting an account takes its sessions and their spent tokens with it.
      const [again] = await db('sessions').insert(session(account.id, 'h3')).returning('id');
      await db('spent_refresh_tokens').insert({ token_hash: 'h4', session_id: again.id });
      await db('accounts').where({ id: account.id }).delete();
      expect(await db('sessions').count({ n: '*' })).to.satisfy((r: { n: unknown }[]) => Number(r[0]!.n) === 0);
      expect(await db('spent_refresh_tokens').count({ n: '*' })).to.satisfy(
        (r: { n: unknown }[]) => Number(r[0]!.n) === 0,
      );
    } finally {
      await db.destroy();
      await database.drop();
    }
  });

  it('rolls the pending-email column back over live codes and forward again', async function () {
    this.timeout(60_000);
    const database = await freshDatabase();
    const db = openDatabase({ databaseUrl: database.url, dataDir: database.dataDir ?? '' });
    try {
      await migrate(db);
      const [account] = await db('accounts').insert({ username: 'mover', email: 'mover@example.test' }).returning('id');
      const code = { account_id: account.id, code_hash: 'h', expires_at: new Date(Date.now() + 600_000) };
      await db('verification_codes').insert({ ...code, new_email: 'new@example.test' });
      // Addresses are stored lower-cased, by the database's own check.
      const upper = await db('verification_codes')
        .where({ account_id: account.id })
        .update({ new_email: 'New@example.test' })
        .catch((err: { code?: string }) => err.code);
      expect(upper).to.equal('23514');

      await rollBackThrough(db, '20261205000000_add_pending_email');
      expect(await columns(db, 'verification_codes')).not.to.include('new_email');
      expect(await db('verification_codes').where({ account_id: account.id }).first('code_hash')).to.deep.equal({
        code_hash: 'h',
      });
      await migrate(db);
      expect(await db('verification_codes').where({ account_id: account.id }).first('new_email')).to.deep.equal({
        new_email: null,
      });
    } finally {
      await db.destroy();
      await database.drop();
    }
  });
});
