// Migrations as a deploy step: `npm run migrate` (up, status, down by one) on a real database;
// MIGRATE_ON_START=false leaves them to that step, with /readyz 503 until they are applied; two
// instances starting at once on an empty database both come up (knex's migration lock, waited
// for); DATABASE_MIGRATION_URL carries the DDL when the serving role may not.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { expect } from 'chai';
import pg from 'pg';
import { register, readyz } from '../generated/sdk.gen.ts';
import { openDatabase, openMigrationDatabase } from '../db/knex.ts';
import { migrate } from '../db/migrate.ts';
import { migrationSource } from '../db/migrations/index.ts';
import { DB_LABEL, freshDatabase, ON_POSTGRES, sharedDatabase, type TestDatabase } from './support/database.ts';
import { ROOT, startServer, TEST_ENV } from './support/server.ts';
import { uniqueUser } from './support/users.ts';
import { waitFor } from './support/wait.ts';

const MIGRATIONS = await migrationSource.getMigrations([]);

/** Runs `npm run migrate -- <args>` as npm does (the script itself, on this Node). */
function migrateCommand(database: TestDatabase, ...args: string[]) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const env = { PATH: process.env.PATH ?? '', ...TEST_ENV, ...database.env() };
    execFile(
      process.execPath,
      [path.join(ROOT, 'scripts/migrate.ts'), ...args],
      { cwd: ROOT, env },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe(`npm run migrate (${DB_LABEL})`, () => {
  let database: TestDatabase;
  before(async () => {
    database = await freshDatabase();
  });
  after(async () => {
    await database?.drop();
  });

  it('reports pending migrations with exit status 3, applies them, undoes the last one, applies it again', async function () {
    // Six processes, each opening the database (PGlite takes seconds to start on a busy machine).
    this.timeout(180_000);
    const last = MIGRATIONS.at(-1)!;
    let run = await migrateCommand(database, 'status');
    expect(run.code).to.equal(3);
    expect(run.stdout).to.include(`pending  ${last}`).and.include(`0 applied, ${MIGRATIONS.length} pending`);

    run = await migrateCommand(database);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.include(`applied: ${MIGRATIONS.join(', ')}`);

    run = await migrateCommand(database, 'down');
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.include(`undone: ${last}`);
    run = await migrateCommand(database, 'status');
    expect(run.code).to.equal(3);
    expect(run.stdout).to.include(`pending  ${last}`).and.include('1 pending');

    run = await migrateCommand(database, 'up');
    expect(run.stdout).to.include(`applied: ${last}`);
    run = await migrateCommand(database, 'status');
    expect(run.code).to.equal(0);
    expect(run.stdout).to.include(`applied  ${last}`).and.include(`${MIGRATIONS.length} applied, 0 pending`);
  });

  it('frees the lock a killed migration left behind', async function () {
    this.timeout(90_000);
    // What a process killed mid-migration leaves: the lock row taken, for good.
    const db = openDatabase({ databaseUrl: database.directUrl, dataDir: database.dataDir ?? '' });
    try {
      await db('knex_migrations_lock').update({ is_locked: 1 });
    } finally {
      await db.destroy();
    }
    const refused = await migrateCommand(database, 'down');
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.include('Migration table is already locked');
    expect((await migrateCommand(database, 'unlock')).stdout).to.include('migration lock freed');
    expect((await migrateCommand(database, 'up')).stdout).to.include('up to date: nothing to apply');
  });

  it('refuses an unknown subcommand with its usage and exit status 2', async () => {
    for (const args of [['sideways'], ['up', 'down']]) {
      const run = await migrateCommand(database, ...args);
      expect(run.code).to.equal(2);
      expect(run.stderr).to.include('usage: npm run migrate [-- up | status | down | unlock]');
    }
  });

  it('stops on a bad configuration with the variable named', async () => {
    const bad: TestDatabase = { ...database, env: () => ({ ...database.env(), LOG_LEVEL: 'loud' }) };
    const run = await migrateCommand(bad, 'status');
    expect(run.code).to.equal(2);
    expect(run.stderr).to.match(/configuration error: LOG_LEVEL/);
  });
});

if (ON_POSTGRES) {
  describe('migrations at start-up (PostgreSQL)', () => {
    it('with MIGRATE_ON_START=false: serves, /readyz 503 until `npm run migrate` has run, then ready', async function () {
      this.timeout(60_000);
      const server = await startServer({ env: { MIGRATE_ON_START: 'false' } });
      try {
        const before = await readyz({ client: server.client });
        expect(before.response!.status).to.equal(503);
        expect(before.error).to.include({
          code: 'service_unavailable',
          detail: 'Database migrations are pending: run `npm run migrate`.',
        });
        expect(server.logs().some((l) => l.msg?.toString().startsWith('migrations pending'))).to.equal(true);

        const run = await migrateCommand(server.database, 'up');
        expect(run.code, run.stderr).to.equal(0);
        await waitFor(
          async () => (await readyz({ client: server.client })).response!.status === 200,
          'ready once migrated',
          10_000,
        );
        const { response } = await register({ client: server.client, body: uniqueUser('late') });
        expect(response!.status).to.equal(201);
      } finally {
        await server.stop();
      }
    });

    it('two instances starting at once on an empty database both come up, and migrate once', async function () {
      this.timeout(90_000);
      const database = await freshDatabase();
      try {
        const [a, b] = await Promise.all([
          startServer({ database: sharedDatabase(database) }),
          startServer({ database: sharedDatabase(database) }),
        ]);
        try {
          for (const server of [a, b]) {
            expect((await readyz({ client: server.client })).response!.status).to.equal(200);
            const { response } = await register({ client: server.client, body: uniqueUser('twin') });
            expect(response!.status).to.equal(201);
          }
          const applied = await database.sql<{ name: string }>('select name from knex_migrations order by id');
          expect(applied.map((r) => r.name)).to.deep.equal(MIGRATIONS);
          const locks = await database.sql<{ is_locked: number }>('select is_locked from knex_migrations_lock');
          expect(locks).to.deep.equal([{ is_locked: 0 }]);
        } finally {
          await Promise.all([a.stop(), b.stop()]);
        }
      } finally {
        await database.drop();
      }
    });

    it('four migrators at once on an empty database: all succeed, one applies, the lock is free after', async function () {
      this.timeout(60_000);
      // In one process their queries interleave for certain: knex alone fails here (each creates
      // knex_migrations, and all but one get "already exists").
      const database = await freshDatabase();
      const dbs = Array.from({ length: 4 }, () => openMigrationDatabase({ databaseUrl: database.url, dataDir: '' }));
      try {
        const applied = await Promise.all(dbs.map((db) => migrate(db)));
        expect(applied.map((names) => names.length).sort()).to.deep.equal([0, 0, 0, MIGRATIONS.length]);
        const locks = await database.sql<{ is_locked: number }>('select is_locked from knex_migrations_lock');
        expect(locks).to.deep.equal([{ is_locked: 0 }]);
      } finally {
        await Promise.all(dbs.map((db) => db.destroy()));
        await database.drop();
      }
    });

    it('runs migrations over DATABASE_MIGRATION_URL when the serving role may not change the schema', async function () {
      this.timeout(60_000);
      const role = `rst_app_${Date.now().toString(36)}`;
      const database = await freshDatabase();
      const onPostgres = (name: string) => {
        const url = new URL(database.directUrl!);
        url.pathname = `/${name}`;
        return url;
      };
      const asAdmin = async (sql: string, db = 'postgres') => {
        const client = new pg.Client({ connectionString: onPostgres(db).href });
        await client.connect();
        try {
          await client.query(sql);
        } finally {
          await client.end();
        }
      };
      // PostgreSQL 15 grants no CREATE on schema public to other roles: this role can only use
      // what the owner creates, as a production application role should.
      await asAdmin(`create role ${role} login`);
      await asAdmin(`alter role ${role} set statement_timeout = '5s'`);
      const dbName = new URL(database.directUrl!).pathname.slice(1);
      await asAdmin(
        `alter default privileges in schema public grant select, insert, update, delete on tables to ${role};
         alter default privileges in schema public grant usage, select on sequences to ${role}`,
        dbName,
      );
      const appUrl = onPostgres(dbName);
      appUrl.username = role;
      const asApp = (extra: Record<string, string>): TestDatabase => ({
        ...sharedDatabase(database),
        env: () => ({ DATABASE_URL: appUrl.href, ...extra }),
      });
      try {
        // The control: the application role alone cannot migrate.
        await startServer({ database: asApp({}) }).then(
          (s) => s.stop().then(() => expect.fail('started without DDL rights')),
          (err: Error) => expect(err.message).to.match(/permission denied for schema public/),
        );
        const server = await startServer({
          database: asApp({ DATABASE_MIGRATION_URL: onPostgres(dbName).href }),
        });
        try {
          const { response } = await register({ client: server.client, body: uniqueUser('app') });
          expect(response!.status).to.equal(201);
          // The role's statement_timeout bounds single statements: no warning about it.
          expect(server.logs().some((l) => String(l.msg).startsWith('statement_timeout is 0'))).to.equal(false);
        } finally {
          await server.stop();
        }
      } finally {
        await database.drop();
        await asAdmin(`drop role if exists ${role}`);
      }
    });
  });
}
