// npm run bench: the service against the stack's own limit, in one run on one database.
//
// It creates a throw-away database on a PostgreSQL server (BENCH_DATABASE_URL, default
// postgres://postgres@127.0.0.1:5432/postgres: the database named there is only used to create
// and drop the bench's own), seeds accounts and API keys (seed.ts), and starts as child
// processes: the service (built and run as `npm start` does, NODE_ENV=production, LOG_LEVEL=warn,
// the default scrypt cost, its credential cache on), the same with CREDENTIAL_CACHE=off and with
// WEB_CONCURRENCY=2, the baseline (baseline.ts: bare node:http + pg, one primary-key SELECT per
// request) and the reference (reference.ts: the same answer from memory, no database). Load comes
// from another child process running autocannon (load.ts), never from a process being measured;
// the KDF bound is measured in a child process of its own (kdf.ts). Service and reference phases
// alternate over several rounds (rounds.ts; the machine is shared and noisy); the cache's own
// counters are read from /metrics (cacheMetrics.ts); the table shows medians and ratios (rows.ts),
// then each target of issue 20 met or missed (targets.ts), and the JSON goes to .bench/
// (report.ts).
//
//   npm run bench                            1,000 accounts + keys
//   npm run bench -- --scale 1m              also 1,000,000 (or BENCH_SCALE=1m)
//   npm run bench -- --rounds 1 --duration 1 a quick look while developing
//   npm run bench -- --help
import { cleanup } from './cleanup.ts';
import { parseOptions } from './options.ts';
import { report } from './report.ts';
import { measure } from './rounds.ts';
import { prepare, seedScales, startServers } from './setup.ts';

async function main(): Promise<void> {
  const run = await prepare(parseOptions());
  const seeded = await seedScales(run);
  const servers = await startServers(run, seeded);
  const measured = await measure(run, seeded, servers);
  report(run, seeded, servers, measured);
}

if (import.meta.main) {
  process.once('SIGINT', () => {
    console.error('\ninterrupted: stopping servers and dropping the bench databases …');
    cleanup().finally(() => process.exit(130));
  });
  try {
    await main();
  } catch (err) {
    console.error('bench failed:', err instanceof Error ? err.message : err);
    const code = (err as { code?: string })?.code ?? '';
    if (/^(ECONNREFUSED|ENOTFOUND|28P01|28000|3D000|42501)$/.test(code)) {
      console.error(
        'PostgreSQL is needed: set BENCH_DATABASE_URL=postgres://user:password@host:5432/postgres (a role allowed to CREATE DATABASE).',
      );
    }
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
}
