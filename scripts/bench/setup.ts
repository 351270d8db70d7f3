// The phases before anything is measured: settle the run's parameters and build the service, seed
// one database per scale, start the service, its CREDENTIAL_CACHE=off and WEB_CONCURRENCY=2
// variants, the baseline and the no-database reference.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { type Config, loadConfig } from '../../config.ts';
import { openDatabase } from '../../db/knex.ts';
import { isWellFormedApiKey } from '../../lib/apiKeys.ts';
import { JwtService } from '../../lib/jwt.ts';
import { type Credentials, credentialsFor, smokeTest, smokeTestReference } from './credentials.ts';
import { createBenchDatabase, serverVersion } from './databases.ts';
import type { Options } from './options.ts';
import { seed, type SeedResult } from './seed.ts';
import {
  announceBaseline,
  announceReference,
  announceService,
  type Proc,
  processTree,
  serviceEnv,
  startCommand,
  startProcess,
} from './servers.ts';

export type Scale = '1k' | '1m';

export interface Run {
  opts: Options;
  started: Date;
  loadBefore: number[];
  jwtSecret: string;
  config: Readonly<Config>;
  loginConnections: number;
  /** node flags of the service */
  flags: string[];
  /** node's arguments to start the service: the flags and the built entry point */
  command: string[];
  /** the PostgreSQL URL with its password masked */
  safeUrl: string;
  pgVersion: string;
  scales: { label: Scale; accounts: number }[];
  /** the large scale's account count, as printed */
  large: string;
}

export interface Seeded {
  seeds: Record<string, SeedResult>;
  creds: Record<string, Credentials>;
  dbUrls: Record<string, string>;
}

export interface Servers {
  services: Record<string, Proc>;
  baselines: Record<string, Proc>;
  /** the service at 1k started like services['1k'] but with CREDENTIAL_CACHE=off */
  cacheOff: Proc;
  /** the no-database reference at 1k (reference.ts) */
  reference: Proc;
  /** the service at 1k with WEB_CONCURRENCY=2, when it really forks two workers */
  cluster: Proc | undefined;
  /** why there is no cluster, when there is none */
  clusterNote: string;
  poolMax: number;
}

export async function prepare(opts: Options): Promise<Run> {
  const started = new Date();
  const loadBefore = os.loadavg();
  const jwtSecret = randomBytes(48).toString('base64url');
  const config = loadConfig(serviceEnv(opts.databaseUrl, jwtSecret));
  const loginConnections = opts.loginConnections || 4 * config.kdfConcurrency;
  const start = startCommand();
  const flags = opts.nodeFlags ?? start.flags;
  const command = [...flags, start.entry];
  const safeUrl = opts.databaseUrl.replace(/\/\/([^:@/]+):[^@]*@/, '//$1:***@');
  console.log(`rst auth bench — PostgreSQL ${safeUrl} (set BENCH_DATABASE_URL to point elsewhere; --help for options)`);
  console.log(
    `scale ${opts.scale}, ${opts.rounds} rounds × ${opts.duration} s reads / ${opts.kdfDuration} s logins, warm-up ${opts.warmup} s, ` +
      `${opts.connections} read connections, ${loginConnections} login connections; scrypt logN ${config.scrypt.logN} r ${config.scrypt.r} p ${config.scrypt.p} × ${config.kdfConcurrency}` +
      `; node ${command.join(' ')}`,
  );
  const pgVersion = await serverVersion(opts.databaseUrl);
  const scales: Run['scales'] = [{ label: '1k', accounts: 1000 }];
  if (opts.scale === '1m') scales.push({ label: '1m', accounts: opts.largeAccounts });
  return {
    opts,
    started,
    loadBefore,
    jwtSecret,
    config,
    loginConnections,
    flags,
    command,
    safeUrl,
    pgVersion,
    scales,
    large: opts.largeAccounts.toLocaleString('en'),
  };
}

export async function seedScales(run: Run): Promise<Seeded> {
  const { opts, config } = run;
  const jwt = new JwtService({
    secret: run.jwtSecret,
    ttlSeconds: config.jwtTtlSeconds,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
  });
  const seeded: Seeded = { seeds: {}, creds: {}, dbUrls: {} };
  for (const scale of run.scales) {
    const db = await createBenchDatabase(opts.databaseUrl, scale.label);
    seeded.dbUrls[scale.label] = db.url;
    console.log(`seeding ${scale.accounts.toLocaleString('en')} accounts + keys into ${db.name} …`);
    const result = await seed({
      databaseUrl: db.url,
      accounts: scale.accounts,
      sample: Math.min(opts.sample, scale.accounts),
      scrypt: config.scrypt,
      log: (line) => console.log(line),
    });
    // Every sampled key must pass the service's own format check (shape + CRC32), or the load
    // would measure 401s.
    if (!result.sample.every((a) => isWellFormedApiKey(a.apiKey)))
      throw new Error('seeding produced a malformed API key');
    seeded.seeds[scale.label] = result;
    console.log(
      `  seeded in ${result.seconds.total.toFixed(1)} s (accounts ${result.seconds.accounts.toFixed(1)} s, keys ${result.seconds.keys.toFixed(1)} s)`,
    );
    seeded.creds[scale.label] = credentialsFor(result, jwt);
  }
  return seeded;
}

/** The pool size the service's knex uses, read from the same code, so the baseline matches it. */
async function servicePoolSize(databaseUrl: string): Promise<number> {
  const probe = openDatabase({ databaseUrl, dataDir: '' });
  const poolMax = Number((probe.client as { config: { pool?: { max?: number } } }).config.pool?.max ?? 10);
  await probe.destroy();
  return poolMax;
}

export async function startServers(run: Run, seeded: Seeded): Promise<Servers> {
  const poolMax = await servicePoolSize(seeded.dbUrls['1k']!);
  const services: Servers['services'] = {};
  const baselines: Servers['baselines'] = {};
  for (const { label } of run.scales) {
    const dbUrl = seeded.dbUrls[label]!;
    services[label] = await startProcess(
      `service ${label}`,
      run.command,
      serviceEnv(dbUrl, run.jwtSecret),
      announceService,
    );
    baselines[label] = await startProcess(
      `baseline ${label}`,
      ['scripts/bench/baseline.ts', '--database-url', dbUrl, '--pool', String(poolMax)],
      { PATH: process.env.PATH, NODE_ENV: 'production' },
      announceBaseline,
    );
    await smokeTest(services[label].url, baselines[label].url, seeded.creds[label]!, label);
  }
  const { cacheOff, reference } = await startCacheVariants(run, seeded, baselines['1k']!);
  const { cluster, clusterNote } = await startCluster(run, seeded, baselines['1k']!);
  return { services, baselines, cacheOff, reference, cluster, clusterNote, poolMax };
}

// The two ends a cached read sits between: the same service with its cache off (every read the
// one indexed query), and the reference that never asks the database at all.
async function startCacheVariants(
  run: Run,
  seeded: Seeded,
  baseline: Proc,
): Promise<Pick<Servers, 'cacheOff' | 'reference'>> {
  const dbUrl = seeded.dbUrls['1k']!;
  const creds = seeded.creds['1k']!;
  const cacheOff = await startProcess(
    'service 1k CREDENTIAL_CACHE=off',
    run.command,
    serviceEnv(dbUrl, run.jwtSecret, { CREDENTIAL_CACHE: 'off' }),
    announceService,
  );
  await smokeTest(cacheOff.url, baseline.url, creds, 'CREDENTIAL_CACHE=off');
  const reference = await startProcess(
    'reference 1k',
    ['scripts/bench/reference.ts', '--database-url', dbUrl],
    { PATH: process.env.PATH, NODE_ENV: 'production' },
    announceReference,
  );
  await smokeTestReference(reference.url, baseline.url, creds);
  return { cacheOff, reference };
}

// WEB_CONCURRENCY=2 counts only if server.ts really forks two workers (config.ts may parse the
// variable before server.ts acts on it).
async function startCluster(
  run: Run,
  seeded: Seeded,
  baseline: Proc,
): Promise<{ cluster: Proc | undefined; clusterNote: string }> {
  const env = serviceEnv(seeded.dbUrls['1k']!, run.jwtSecret, { WEB_CONCURRENCY: '2' });
  let cluster: Proc | undefined;
  let clusterNote = '';
  try {
    if (loadConfig(env).webConcurrency !== 2) clusterNote = 'config.ts does not read WEB_CONCURRENCY';
  } catch (err) {
    clusterNote = `config.ts refuses WEB_CONCURRENCY=2: ${err instanceof Error ? err.message : err}`;
  }
  if (!clusterNote) {
    cluster = await startProcess('service 1k WEB_CONCURRENCY=2', run.command, env, announceService);
    const workers = processTree(cluster.proc.pid!).length - 1;
    if (workers !== 2) {
      clusterNote = `server.ts started ${workers} worker processes for WEB_CONCURRENCY=2`;
      await cluster.stop();
      cluster = undefined;
    } else {
      await smokeTest(cluster.url, baseline.url, seeded.creds['1k']!, 'WEB_CONCURRENCY=2');
    }
  }
  if (clusterNote) console.log(`WEB_CONCURRENCY=2: not available (${clusterNote})`);
  return { cluster, clusterNote };
}
