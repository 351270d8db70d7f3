// The operator's service-key command (`npm run service-key -- create NAME | list | revoke NAME`):
// the key is printed once, alone on stdout, in the rst_svc_ format, and stored only as a hash.
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { expectedChecksum } from './support/keyFormat.ts';
import { DB_LABEL, freshDatabase, type TestDatabase } from './support/database.ts';
import { migratedDatabase, serviceKeyCommand } from './support/serviceKeys.ts';

describe(`service-key command (${DB_LABEL})`, function () {
  this.timeout(60_000);
  let database: TestDatabase;
  before(async () => {
    database = await migratedDatabase();
  });
  after(async () => {
    await database?.drop();
  });

  it('creates a key shown once, alone on stdout, as rst_svc_ + 36 base62 + a CRC32, stored as SHA-256 only', async () => {
    const run = await serviceKeyCommand(database, 'create', 'storefront');
    expect(run.code).to.equal(0);
    expect(run.stdout).to.match(/^rst_svc_[0-9A-Za-z]{42}\n$/);
    const key = run.stdout.trim();
    expect(key.slice(44)).to.equal(expectedChecksum(key.slice(8, 44)));
    expect(run.stderr).to.include('shown only this once').and.not.include(key);
    const dump = await database.dump();
    expect(dump).not.to.include(key.slice(8, 44));
    expect(dump).to.include(createHash('sha256').update(key).digest('hex'));
    expect(dump).to.include(key.slice(0, 16)); // the prefix, for telling keys apart
  });

  it('refuses a second active key of the same name (exit 1), and lists names and prefixes only', async () => {
    const again = await serviceKeyCommand(database, 'create', 'storefront');
    expect(again.code).to.equal(1);
    expect(again.stdout).to.equal('');
    expect(again.stderr).to.match(/already named "storefront"/);
    const other = await serviceKeyCommand(database, 'create', 'billing-worker');
    expect(other.code).to.equal(0);
    const list = await serviceKeyCommand(database, 'list');
    expect(list.code).to.equal(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).to.match(/^NAME +PREFIX +CREATED$/);
    expect(lines.slice(1).map((l) => l.split(/ +/)[0])).to.deep.equal(['storefront', 'billing-worker']);
    expect(list.stdout).not.to.include(other.stdout.trim());
  });

  it('revokes by name (then the name is free again); an unknown or revoked name is exit 1', async () => {
    expect((await serviceKeyCommand(database, 'revoke', 'billing-worker')).code).to.equal(0);
    const twice = await serviceKeyCommand(database, 'revoke', 'billing-worker');
    expect(twice.code).to.equal(1);
    expect(twice.stderr).to.match(/no active key is named "billing-worker"/);
    expect((await serviceKeyCommand(database, 'revoke', 'never-made')).code).to.equal(1);
    const list = await serviceKeyCommand(database, 'list');
    expect(list.stdout).not.to.include('billing-worker');
    expect((await serviceKeyCommand(database, 'create', 'billing-worker')).code).to.equal(0);
  });

  it('changes no schema: with migrations pending it stops (exit 2) and says to run npm run migrate', async () => {
    const empty = await freshDatabase();
    try {
      const run = await serviceKeyCommand(empty, 'create', 'early');
      expect(run.code).to.equal(2);
      expect(run.stdout).to.equal('');
      expect(run.stderr).to.match(/migrations are pending; run npm run migrate first/);
    } finally {
      await empty.drop();
    }
  });

  it('answers a usage error with exit 2 and the usage line', async () => {
    for (const args of [
      [],
      ['make', 'x'],
      ['create'],
      ['revoke'],
      ['list', 'extra'],
      ['create', 'a', 'b'],
      ['create', '-bad'],
      ['create', 'x'.repeat(65)],
    ]) {
      const run = await serviceKeyCommand(database, ...args);
      expect(run.code, args.join(' ')).to.equal(2);
      expect(run.stdout, args.join(' ')).to.equal('');
      expect(run.stderr, args.join(' ')).to.match(/usage: npm run service-key|NAME must be/);
    }
  });
});
