// Seeds N verified accounts, N sessions and N API keys (one of each per account) straight into
// PostgreSQL, fast enough for 1,000,000 of each in a minute or two:
//
//   - accounts: `insert … select … from generate_series`, in chunks, entirely inside PostgreSQL.
//     Every account gets the same scrypt hash of one password, made once with the service's own
//     hasher and parameters, so a login costs exactly what a real one does.
//   - sessions: the same way, one open password session per account, which the bench's JWTs name
//     (`sid`) as a login's would. Their refresh hashes are of no token: the bench never refreshes.
//   - keys: real rst_ keys minted by lib/apiKeys.ts (`newApiKey`: CSPRNG, CRC32 checksum, SHA-256
//     at rest, exactly as the service stores them), sent as arrays and spread by `unnest`, the next
//     chunk minted while PostgreSQL writes the previous one. A raw key cannot be read back from its
//     hash, so the raw keys of a uniform random sample of accounts are kept and returned.
//
// Account n (1-based) is `bench_<n>` / `bench_<n>@bench.example`, with id md5('rst-bench:' || n)
// read as a UUID (its session md5('rst-bench-session:' || n)): random-looking like gen_random_uuid() (so primary-key inserts and lookups land
// all over the index, as in production), yet computable on both sides without a round trip.
//
//   node scripts/bench/seed.ts --database-url postgres://… --accounts 1000000 [--sample 1000] [--out f.json]
//
// The database is migrated first. Meant for an empty, throw-away database (npm run bench makes one).
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openDatabase } from '../../db/knex.ts';
import { migrate } from '../../db/migrate.ts';
import { newApiKey } from '../../lib/apiKeys.ts';
import { newServiceKey } from '../../lib/serviceKeys.ts';
import { PasswordHasher, type ScryptParams } from '../../lib/passwords.ts';

export interface SeedOptions {
  databaseUrl: string;
  accounts: number;
  /** How many accounts (spread uniformly over 1..N) to return credentials for. */
  sample: number;
  /** The service's password-hashing cost: the stored hash must cost what a real login costs. */
  scrypt: ScryptParams;
  log?: (line: string) => void;
}

export interface SeededAccount {
  n: number;
  id: string;
  username: string;
  sessionId: string;
  apiKey: string;
}

export interface SeedResult {
  accounts: number;
  /** The password of every seeded account. */
  password: string;
  sample: SeededAccount[];
  /** One service key (rst_svc_…), for the introspection phase. */
  serviceKey: string;
  seconds: { accounts: number; keys: number; total: number };
}

const ACCOUNT_CHUNK = 100_000;
const KEY_CHUNK = 25_000;

export const benchUsername = (n: number): string => `bench_${n}`;

/** The same value as PostgreSQL's md5(label || n)::uuid. */
function md5Uuid(label: string, n: number): string {
  const h = createHash('md5').update(`${label}${n}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export const benchAccountId = (n: number): string => md5Uuid('rst-bench:', n);
const benchSessionId = (n: number): string => md5Uuid('rst-bench-session:', n);

/** `count` distinct numbers drawn uniformly from 1..n, ascending. */
function sampleOf(n: number, count: number): number[] {
  if (count >= n) return Array.from({ length: n }, (_, i) => i + 1);
  const picked = new Set<number>();
  while (picked.size < count) picked.add(1 + Math.floor(Math.random() * n));
  return [...picked].sort((a, b) => a - b);
}

export async function seed(opts: SeedOptions): Promise<SeedResult> {
  const log = opts.log ?? (() => {});
  const started = performance.now();
  const knex = openDatabase({ databaseUrl: opts.databaseUrl, dataDir: '' });
  try {
    await migrate(knex);
  } finally {
    await knex.destroy();
  }

  const password = `bench ${randomBytes(12).toString('base64url')}`;
  const passwordHash = await new PasswordHasher(opts.scrypt, 1, 0).hash(password);

  const client = new pg.Client({ connectionString: opts.databaseUrl });
  await client.connect();
  try {
    // Throw-away data: losing the last commits in a crash costs nothing, waiting for each flush does.
    await client.query('set synchronous_commit = off');

    for (let from = 1; from <= opts.accounts; from += ACCOUNT_CHUNK) {
      const to = Math.min(opts.accounts, from + ACCOUNT_CHUNK - 1);
      await client.query(
        `insert into accounts (id, username, email, email_verified, password_hash)
         select md5('rst-bench:' || n)::uuid, 'bench_' || n, 'bench_' || n || '@bench.example', true, $1
         from generate_series($2::int, $3::int) as n`,
        [passwordHash, from, to],
      );
      await client.query(
        `insert into sessions (id, account_id, method, refresh_hash, expires_at, absolute_expires_at)
         select md5('rst-bench-session:' || n)::uuid, md5('rst-bench:' || n)::uuid, 'password',
           md5('rst-bench-refresh:' || n), now() + interval '30 days', now() + interval '90 days'
         from generate_series($1::int, $2::int) as n`,
        [from, to],
      );
      if (opts.accounts > ACCOUNT_CHUNK)
        log(`  accounts ${to.toLocaleString('en')} / ${opts.accounts.toLocaleString('en')}`);
    }
    const accountsDone = performance.now();

    const wanted = sampleOf(opts.accounts, opts.sample);
    const sample: SeededAccount[] = [];
    let next = 0;
    let pending: Promise<unknown> | undefined;
    for (let from = 1; from <= opts.accounts; from += KEY_CHUNK) {
      const to = Math.min(opts.accounts, from + KEY_CHUNK - 1);
      const ids: string[] = [];
      const prefixes: string[] = [];
      const hashes: string[] = [];
      for (let n = from; n <= to; n++) {
        const key = newApiKey();
        const id = benchAccountId(n);
        ids.push(id);
        prefixes.push(key.prefix);
        hashes.push(key.hash);
        if (wanted[next] === n) {
          sample.push({ n, id, username: benchUsername(n), sessionId: benchSessionId(n), apiKey: key.raw });
          next++;
        }
      }
      await pending;
      pending = client.query(
        `insert into api_keys (account_id, name, prefix, key_hash)
         select account_id, 'bench', prefix, key_hash from unnest($1::uuid[], $2::text[], $3::text[]) as k (account_id, prefix, key_hash)`,
        [ids, prefixes, hashes],
      );
      if (opts.accounts > ACCOUNT_CHUNK && to % 250_000 < KEY_CHUNK)
        log(`  keys ${to.toLocaleString('en')} / ${opts.accounts.toLocaleString('en')}`);
    }
    await pending;
    // The product backend's credential: introspection is measured with it.
    const serviceKey = newServiceKey();
    await client.query(`insert into service_keys (name, prefix, key_hash) values ('bench', $1, $2)`, [
      serviceKey.prefix,
      serviceKey.hash,
    ]);
    // Fresh statistics, so the planner sees a million rows rather than an empty table.
    await client.query('analyze accounts');
    await client.query('analyze sessions');
    await client.query('analyze api_keys');
    const done = performance.now();
    return {
      accounts: opts.accounts,
      password,
      sample,
      serviceKey: serviceKey.raw,
      seconds: {
        accounts: (accountsDone - started) / 1000,
        keys: (done - accountsDone) / 1000,
        total: (done - started) / 1000,
      },
    };
  } finally {
    await client.end();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'database-url': { type: 'string' },
      accounts: { type: 'string', default: '1000' },
      sample: { type: 'string', default: '1000' },
      'scrypt-log-n': { type: 'string', default: '15' },
      'scrypt-r': { type: 'string', default: '8' },
      'scrypt-p': { type: 'string', default: '3' },
      out: { type: 'string' },
    },
  });
  const databaseUrl = values['database-url'];
  const accounts = Number(values.accounts);
  const sample = Number(values.sample);
  if (!databaseUrl || !Number.isInteger(accounts) || accounts < 1 || !Number.isInteger(sample) || sample < 0) {
    console.error(
      'usage: node scripts/bench/seed.ts --database-url postgres://… --accounts N [--sample S] [--out sample.json]',
    );
    process.exit(2);
  }
  const scrypt = { logN: Number(values['scrypt-log-n']), r: Number(values['scrypt-r']), p: Number(values['scrypt-p']) };
  const result = await seed({ databaseUrl, accounts, sample, scrypt, log: console.log });
  console.log(
    `seeded ${accounts.toLocaleString('en')} accounts and keys in ${result.seconds.total.toFixed(1)} s (accounts ${result.seconds.accounts.toFixed(1)} s, keys ${result.seconds.keys.toFixed(1)} s)`,
  );
  if (values.out) {
    // Holds live credentials of the seeded accounts: written owner-only.
    fs.writeFileSync(values.out, JSON.stringify({ password: result.password, sample: result.sample }, null, 2), {
      mode: 0o600,
    });
    console.log(`password and ${result.sample.length} sampled keys written to ${values.out}`);
  }
}

if (import.meta.main) {
  main().catch((err) => {
    console.error('seed failed:', err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
