// npm run migrate [-- up | status | down | unlock]: migrations as a deploy step of their own,
// before a rolling deploy starts instances with MIGRATE_ON_START=false. Reads the same
// configuration as the server; runs over DATABASE_MIGRATION_URL (a direct connection, past any
// pooler) when set, else DATABASE_URL, else the embedded database in DATA_DIR.
//   up      apply every pending migration (the default); waits while another process migrates
//   status  list applied and pending migrations; exit status 3 when some are pending
//   down    undo the last applied migration (one, not a batch)
//   unlock  free the migration lock a killed process left behind
import { ConfigError, loadConfig } from '../config.ts';
import { openMigrationDatabase } from '../db/knex.ts';
import { freeMigrationLock, migrate, migrationStatus, rollbackLast } from '../db/migrate.ts';

const USAGE = 'usage: npm run migrate [-- up | status | down | unlock]';

async function main(args: string[]): Promise<number> {
  if (args.length > 1 || (args[0] !== undefined && !['up', 'status', 'down', 'unlock'].includes(args[0]))) {
    console.error(USAGE);
    return 2;
  }
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) console.error(`rst auth: configuration error: ${problem}`);
    return 2;
  }
  const db = openMigrationDatabase(config);
  try {
    switch (args[0] ?? 'up') {
      case 'up': {
        const applied = await migrate(db);
        console.log(applied.length ? `applied: ${applied.join(', ')}` : 'up to date: nothing to apply');
        return 0;
      }
      case 'status': {
        const { applied, pending } = await migrationStatus(db);
        for (const name of applied) console.log(`applied  ${name}`);
        for (const name of pending) console.log(`pending  ${name}`);
        console.log(`${applied.length} applied, ${pending.length} pending`);
        return pending.length > 0 ? 3 : 0;
      }
      case 'down': {
        const undone = await rollbackLast(db);
        console.log(undone ? `undone: ${undone}` : 'nothing to undo');
        return 0;
      }
      default:
        await freeMigrationLock(db);
        console.log('migration lock freed');
        return 0;
    }
  } finally {
    await db.destroy();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error('rst auth: migrate failed:', err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
