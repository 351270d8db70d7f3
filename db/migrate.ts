// Migrations: applied at start (MIGRATE_ON_START) or as a step of their own (`npm run migrate`),
// by any number of instances at once. knex's migration lock is a row of knex_migrations_lock
// taken in a transaction, so it holds through a pooler in transaction mode too; a second instance
// that finds it taken waits for it here instead of failing its start.
import { createRequire } from 'node:module';
import type { Db } from './knex.ts';
import { migrationSource } from './migrations/index.ts';

const require = createRequire(import.meta.url);
// knex's own creation of its two bookkeeping tables, run here under a lock (see bootstrap()).
const { ensureTable } = require('knex/lib/migrations/migrate/table-creator.js') as {
  ensureTable(tableName: string, schemaName: string | undefined, trx: Db): Promise<unknown>;
};

/** Any constant: the transaction-scoped advisory lock that serialises creating knex's tables. */
const BOOTSTRAP_LOCK = 0x7273_7461;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * On an empty database knex creates knex_migrations and its lock table lazily, with a check then
 * a create: two instances at once both create (one fails), and both may insert a lock row — and a
 * lock table of two rows can never be locked again. Done once here under a transaction-scoped
 * advisory lock (pooler-safe, unlike a session lock), the check and the create cannot interleave.
 */
async function bootstrap(db: Db): Promise<void> {
  await db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [BOOTSTRAP_LOCK]);
    await ensureTable('knex_migrations', undefined, trx);
  });
}

const isLocked = (err: unknown) => (err as { name?: string }).name === 'MigrationLocked';

/** Applies every pending migration; waits up to `waitMs` while another process holds the lock. */
export async function migrate(db: Db, waitMs = 120_000): Promise<string[]> {
  await bootstrap(db);
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
      return applied;
    } catch (err) {
      if (!isLocked(err) || Date.now() > deadline) throw err;
      await sleep(200 + Math.random() * 300);
    }
  }
}

export interface MigrationStatus {
  applied: string[];
  pending: string[];
}

export async function migrationStatus(db: Db): Promise<MigrationStatus> {
  await bootstrap(db);
  const [completed, pending] = (await db.migrate.list({ migrationSource })) as [
    { name: string }[],
    { file: string }[] | string[],
  ];
  return {
    applied: completed.map((m) => m.name),
    pending: pending.map((m) => (typeof m === 'string' ? m : m.file)),
  };
}

/** Undoes the last applied migration; the name undone, or undefined when none was applied. */
export async function rollbackLast(db: Db): Promise<string | undefined> {
  await bootstrap(db);
  const [, undone] = (await db.migrate.down({ migrationSource })) as [number, string[]];
  return undone[0];
}

export async function rollbackAll(db: Db): Promise<void> {
  await db.migrate.rollback({ migrationSource }, true);
}

/** Frees a lock left behind by a process killed while migrating (knex never expires it). */
export async function freeMigrationLock(db: Db): Promise<void> {
  await bootstrap(db);
  await db.migrate.forceFreeMigrationsLock({ migrationSource });
}
