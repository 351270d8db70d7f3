// The operator's command for service keys, run on the service's own configuration and database:
//
//   npm run service-key -- create NAME    prints the new rst_svc_ key, once, alone on stdout
//   npm run service-key -- list           the active keys: name, prefix, created
//   npm run service-key -- revoke NAME    the key stops working at once
//
// Exit status: 0 done, 1 refused (name taken, no such key), 2 usage or configuration error, or
// migrations pending (run `npm run migrate` first: this command never changes the schema).
// On the embedded database (no DATABASE_URL) stop the server first: PGlite is single-process.
import { ConfigError, loadConfig } from '../config.ts';
import { openDatabase } from '../db/knex.ts';
import { migrationStatus } from '../db/migrate.ts';
import { insertServiceKey, listServiceKeys, revokeServiceKey } from '../db/serviceKeys.ts';
import { newServiceKey } from '../lib/serviceKeys.ts';

const USAGE = 'usage: npm run service-key -- create NAME | list | revoke NAME';
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function fail(code: 1 | 2, message: string): never {
  console.error(message);
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  const [command, name, ...extra] = argv;
  const needsName = command === 'create' || command === 'revoke';
  if (!['create', 'list', 'revoke'].includes(command ?? '') || extra.length > 0 || needsName !== (name !== undefined))
    fail(2, USAGE);
  if (needsName && !NAME.test(name!))
    fail(2, `service-key: NAME must be 1–64 of A-Za-z0-9_.- starting with a letter or digit, got "${name}"`);

  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError)
      fail(2, err.problems.map((p) => `service-key: configuration error: ${p}`).join('\n'));
    throw err;
  }
  const db = openDatabase(config);
  try {
    const { pending } = await migrationStatus(db);
    if (pending.length > 0) {
      console.error(`service-key: ${pending.length} migrations are pending; run npm run migrate first`);
      process.exitCode = 2;
    } else if (command === 'create') {
      const key = newServiceKey();
      const row = await insertServiceKey(db, { name: name!, prefix: key.prefix, hash: key.hash });
      if (row === 'name_taken') return refuse(`service-key: an active key is already named "${name}"; revoke it first`);
      // The key alone on stdout (`… create shop > shop.key`); the rest goes to stderr.
      console.log(key.raw);
      console.error(
        `Created service key "${row.name}" (prefix ${row.prefix}). It is shown only this once: store it in the product's secrets now.`,
      );
    } else if (command === 'list') {
      const rows = await listServiceKeys(db);
      if (rows.length === 0) console.log('No active service keys.');
      else {
        const width = Math.max(4, ...rows.map((r) => r.name.length));
        console.log(`${'NAME'.padEnd(width)}  PREFIX            CREATED`);
        for (const r of rows)
          console.log(`${r.name.padEnd(width)}  ${r.prefix.padEnd(16)}  ${r.created_at.toISOString()}`);
      }
    } else {
      if (!(await revokeServiceKey(db, name!))) return refuse(`service-key: no active key is named "${name}"`);
      console.log(`Revoked service key "${name}"; introspection refuses it from now on.`);
    }
  } finally {
    // Closed before exiting, so the embedded database is left whole.
    await db.destroy();
  }
}

function refuse(message: string): void {
  console.error(message);
  process.exitCode = 1;
}

main(process.argv.slice(2)).catch((err) => {
  console.error('service-key: failed:', err instanceof Error ? err.message : err);
  process.exit(1);
});
