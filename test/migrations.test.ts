// Migrations run up, down and up again on a real embedded PostgreSQL, so a `down` that no longer
// matches its `up` is found here rather than during a rollback in production.
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { migrate, openDatabase, rollbackAll } from '../db/knex.ts';

describe('migrations (PGlite)', () => {
  it('migrate, roll everything back, migrate again', async function () {
    this.timeout(60_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rst-migrate-'));
    const db = openDatabase({ databaseUrl: undefined, dataDir: dir });
    const tables = async () =>
      (
        await db.raw(
          `select table_name from information_schema.tables where table_schema = 'public' and table_name not like 'knex_%' order by 1`,
        )
      ).rows.map((r: { table_name: string }) => r.table_name);
    try {
      await migrate(db);
      expect(await tables()).to.deep.equal([
        'accounts',
        'api_keys',
        'outbox',
        'rate_limits',
        'recovery_tokens',
        'service_keys',
        'settings',
        'verification_codes',
      ]);
      await rollbackAll(db);
      expect(await tables()).to.deep.equal([]);
      await migrate(db);
      await db('accounts').insert({ username: 'again', email: 'again@example.test' });
      expect((await tables()).length).to.equal(8);
    } finally {
      await db.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
