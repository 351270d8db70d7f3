// npm run bench: the service against the stack's own limit, in one run on one database.
//
// It creates a throw-away database on a PostgreSQL server (BENCH_DATABASE_URL, default
// postgres://postgres@127.0.0.1:5432/postgres: the database named there is only used to create
// and drop the bench's own), seeds accounts and API keys (scripts/seed.ts), and starts as child
// processes: the service (built and run as `npm start` does, NODE_ENV=production, LOG_LEVEL=warn,
// the default scrypt cost), the same with WEB_CONCURRENCY=2, and the baseline
// (scripts/baseline.ts: bare node:http + pg, one primary-key SELECT per request). Load comes from
// another child process running autocannon, never from a process being measured; the KDF bound
// is measured in a child process of its own. Service and baseline phases alternate over several
// rounds (the machine is shared and noisy); the table shows medians and ratios, and the JSON goes
// to .bench/.
//
//   npm run bench                            1,000 accounts + keys
//   npm run bench -- --scale 1m              also 1,000,000 (or BENCH_SCALE=1m)
//   npm run bench -- --rounds 1 --duration 1 a quick look while developing
//   npm run bench -- --help
import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import * as scryptModule from 'scrypt-kdf';
import { loadConfig } from '../config.ts';
import { openDatabase } from '../db/knex.ts';
import { isWellFormedApiKey } from '../lib/apiKeys.ts';
import { JwtService } from '../lib/jwt.ts';
import { seed, type SeededAccount, type SeedResult } from './seed.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

// ------------------------------------------------------------------ shared shapes

interface LoadSpec {
  url: string;
  method: 'GET' | 'POST';
  path: string;
  /** One is picked at random for every request, so load spreads over the seeded rows. */
  variants: { headers: Record<string, string>; body?: string }[];
  connections: number;
  warmup: number;
  /** Seconds measured; 0 = until the parent sends 'stop' (a background storm). */
  duration: number;
}

interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  /** socket errors + timeouts + non-2xx answers */
  errors: number;
  requests: number;
  seconds: number;
  statusCodes: Record<string, number>;
  /** every response of the run, warm-up included (for CPU per request) */
  total: number;
  /** CPU time of the target process (and its workers) per response, when measured */
  cpuUs?: number;
}

interface KdfSpec {
  params: { logN: number; r: number; p: number };
  concurrency: number;
  warmup: number;
  duration: number;
}

// ------------------------------------------------------------------ role: load generator (child)

interface AutocannonInstance {
  stop(): void;
  on(event: 'response', listener: (client: unknown, status: number, bytes: number, ms: number) => void): void;
  on(event: 'reqError', listener: (err: Error) => void): void;
}
type Autocannon = (opts: Record<string, unknown>, done: (err: Error | null) => void) => AutocannonInstance;

const percentile = (sorted: Float64Array, q: number): number =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! : NaN;

async function loadRole(): Promise<void> {
  // autocannon ships no types; this is the slice of its API used here.
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const spec = await new Promise<LoadSpec>((resolve) => process.once('message', (m) => resolve(m as LoadSpec)));
  const pick = () => spec.variants[Math.floor(Math.random() * spec.variants.length)]!;
  // One continuous run, warm-up included, measured by the responses completing inside the
  // window: restarting autocannon after a warm-up would drop its in-flight requests (the server
  // still works them off) and start the window with empty pipelines — fatal for logins that
  // queue for seconds. Latencies are kept at full precision (autocannon's own histogram keeps
  // whole milliseconds).
  const at: number[] = [];
  const status: number[] = [];
  const latency: number[] = [];
  const failures: number[] = [];
  const began = performance.now();
  const from = began + spec.warmup * 1000;
  const runFor = spec.duration > 0 ? spec.warmup + spec.duration + 0.2 : 3600;
  const done = new Promise<void>((resolve, reject) => {
    const instance = autocannon(
      {
        url: spec.url,
        connections: spec.connections,
        duration: runFor,
        timeout: 10,
        requests: [
          {
            method: spec.method,
            path: spec.path,
            setupRequest: (req: Record<string, unknown>) => {
              const v = pick();
              req.headers = { ...v.headers, ...(v.body ? { 'content-type': 'application/json' } : {}) };
              if (v.body) req.body = v.body;
              return req;
            },
          },
        ],
      },
      (err) => (err ? reject(err) : resolve()),
    );
    instance.on('response', (_client, code, _bytes, ms) => {
      at.push(performance.now());
      status.push(code);
      latency.push(ms);
    });
    instance.on('reqError', () => failures.push(performance.now()));
    setTimeout(() => process.send!({ type: 'warm' }), spec.warmup * 1000);
    // A storm runs until the parent says stop.
    if (spec.duration === 0) process.once('message', () => instance.stop());
    else setTimeout(() => instance.stop(), (spec.warmup + spec.duration) * 1000 + 100);
  });
  let until = spec.duration > 0 ? from + spec.duration * 1000 : Infinity;
  if (spec.duration === 0) process.once('message', () => (until = performance.now()));
  await done;
  if (until === Infinity) until = performance.now();

  const ok: number[] = [];
  const statusCodes: Record<string, number> = {};
  let errors = failures.filter((t) => t >= from && t <= until).length;
  let requests = 0;
  for (let i = 0; i < at.length; i++) {
    if (at[i]! < from || at[i]! > until) continue;
    requests++;
    statusCodes[status[i]!] = (statusCodes[status[i]!] ?? 0) + 1;
    if (status[i]! >= 200 && status[i]! < 300) ok.push(latency[i]!);
    else errors++;
  }
  const sorted = Float64Array.from(ok).sort();
  const seconds = (until - from) / 1000;
  const round = (x: number) => Math.round(x * 100) / 100;
  const out: LoadResult = {
    rps: requests / seconds,
    p50: round(percentile(sorted, 0.5)),
    p99: round(percentile(sorted, 0.99)),
    errors,
    requests,
    seconds,
    statusCodes,
    total: at.length,
  };
  process.send!({ type: 'result', result: out }, () => process.exit(0));
}

// ------------------------------------------------------------------ role: KDF bound (child)

async function kdfRole(): Promise<void> {
  // scrypt-kdf 4 ships one default export at run time while its .d.ts declares named exports.
  const Scrypt = (scryptModule as unknown as { default: typeof scryptModule }).default;
  const spec = await new Promise<KdfSpec>((resolve) => process.once('message', (m) => resolve(m as KdfSpec)));
  const password = 'kdf bound';
  // A login verifies against a stored hash: measure exactly that operation.
  const stored = await Scrypt.kdf(password, spec.params);
  const start = performance.now() + spec.warmup * 1000;
  const end = start + spec.duration * 1000;
  // Per thread, the rate is (completions − 1) / (last − first completion) inside the window: no
  // quantisation error from hashes cut at either edge of the window.
  const loop = async (): Promise<number> => {
    const done: number[] = [];
    for (;;) {
      if (!(await Scrypt.verify(stored, password))) throw new Error('scrypt verify failed');
      const now = performance.now();
      if (now >= start) done.push(now);
      if (now >= end) break;
    }
    return done.length < 2 ? 0 : ((done.length - 1) * 1000) / (done.at(-1)! - done[0]!);
  };
  const rates = await Promise.all(Array.from({ length: spec.concurrency }, loop));
  process.send!({ type: 'result', result: { rate: rates.reduce((a, b) => a + b, 0), perThread: rates } }, () =>
    process.exit(0),
  );
}

// ------------------------------------------------------------------ orchestration helpers

const median = (xs: number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const cleanups: (() => Promise<void> | void)[] = [];

function child(role: 'load' | 'kdf', env: NodeJS.ProcessEnv = process.env): ChildProcess {
  return fork(SELF, [`--role=${role}`], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function awaitMessage<T>(proc: ChildProcess, type: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMessage = (m: { type: string; result?: unknown }) => {
      if (m.type !== type) return;
      proc.off('message', onMessage);
      proc.off('exit', onExit);
      resolve(m.result as T);
    };
    const onExit = (code: number | null) => reject(new Error(`${type}: child exited (${code}) before answering`));
    proc.on('message', onMessage);
    proc.once('exit', onExit);
  });
}

/** Starts a load generator; `result` settles when it is done (or, for a storm, after stop()). */
function startLoad(spec: LoadSpec): { warm: Promise<void>; result: Promise<LoadResult>; stop(): void } {
  const proc = child('load');
  const warm = awaitMessage<void>(proc, 'warm');
  const result = awaitMessage<LoadResult>(proc, 'result');
  proc.send(spec);
  return { warm, result, stop: () => proc.send('stop') };
}

/** Runs a load to its end; with `pid`, also the CPU that process (and its workers) spent per response. */
async function runLoad(spec: LoadSpec, pid?: number): Promise<LoadResult> {
  const before = pid === undefined ? 0 : cpuMs(pid);
  const result = await startLoad(spec).result;
  if (pid !== undefined && result.total > 0) result.cpuUs = Math.round(((cpuMs(pid) - before) * 1000) / result.total);
  return result;
}

async function measureKdf(spec: KdfSpec): Promise<{ rate: number; perThread: number[] }> {
  // The same pool headroom server.ts gives itself, so the bound is not capped by the pool.
  const proc = child('kdf', { ...process.env, UV_THREADPOOL_SIZE: String(spec.concurrency + 4) });
  const result = awaitMessage<{ rate: number; perThread: number[] }>(proc, 'result');
  proc.send(spec);
  return result;
}

interface Proc {
  name: string;
  url: string;
  proc: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Spawns a server script and waits for the line announcing its URL. */
async function startProcess(name: string, args: string[], env: NodeJS.ProcessEnv, announce: RegExp): Promise<Proc> {
  const proc = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-32_768);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 60 s:\n${output}`)), 60_000);
    const check = () => {
      const m = announce.exec(output);
      if (m) {
        clearTimeout(timer);
        proc.stdout!.off('data', check);
        resolve(m[1]!);
      }
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before listening:\n${output}`));
    });
  });
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    const force = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(force);
  };
  cleanups.push(stop);
  return { name, url, proc, output: () => output, stop };
}

/** The process and its direct children (cluster workers), from /proc. */
function processTree(pid: number): number[] {
  try {
    const children = fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
    return [pid, ...children];
  } catch {
    return [pid];
  }
}

/** utime + stime of a process and its live children, in ms (/proc reports USER_HZ = 100 ticks). */
function cpuMs(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const fields = fs.readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {}
  }
  return ticks * 10;
}

function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Peak resident memory per process, sampled while the bench runs and read from VmHWM at the end. */
class RssWatch {
  readonly peakKb = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;
  private readonly roots: () => number[];
  constructor(roots: () => number[]) {
    this.roots = roots;
    this.timer = setInterval(() => this.sample('VmRSS'), 250);
    this.timer.unref();
  }
  sample(field: 'VmHWM' | 'VmRSS'): void {
    for (const root of this.roots()) {
      for (const pid of processTree(root)) {
        const kb = statusKb(pid, field);
        if (Number.isFinite(kb)) this.peakKb.set(pid, Math.max(this.peakKb.get(pid) ?? 0, kb));
      }
    }
  }
  stop(): void {
    this.sample('VmHWM');
    clearInterval(this.timer);
  }
}

function freeDatabaseName(label: string): string {
  return `rst_bench_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}_${label}`;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function admin<T>(url: string, work: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await work(c);
  } finally {
    await c.end();
  }
}

// ------------------------------------------------------------------ the run

interface Options {
  scale: '1k' | '1m';
  rounds: number;
  duration: number;
  kdfDuration: number;
  warmup: number;
  connections: number;
  loginConnections: number;
  sample: number;
  /** accounts of the large scale: 1,000,000 (smaller only to try the bench itself quickly) */
  largeAccounts: number;
  /** node flags for the service; undefined = those of package.json's start script */
  nodeFlags: string[] | undefined;
  databaseUrl: string;
}

const HELP = `npm run bench [-- options]

  --scale 1k|1m          1m also seeds and measures 1,000,000 accounts + keys (env BENCH_SCALE)
  --rounds N             service/baseline alternations (default 3)
  --duration S           seconds measured per read phase (default 5)
  --kdf-duration S       seconds per login / KDF phase (default 2 × duration)
  --warmup S             seconds of unmeasured load before each phase (default 1)
  --connections N        autocannon connections for reads (default 32)
  --login-connections N  connections for logins (default 4 × the KDF concurrency)
  --sample N             distinct accounts / keys / JWTs the load spreads over (default 1000)
  --large-accounts N     size of the 1m scale (default 1000000; smaller only to try the bench)
  --node-flags "F"       node flags for the service instead of those in package.json's start
                         script, e.g. --node-flags "--max-semi-space-size=16"

PostgreSQL: BENCH_DATABASE_URL (default ${DEFAULT_URL}). The bench creates its own database on
that server and drops it at the end; the role needs CREATEDB. To point it elsewhere:
  BENCH_DATABASE_URL=postgres://user:password@host:5432/postgres npm run bench
`;

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      scale: { type: 'string' },
      rounds: { type: 'string', default: '3' },
      duration: { type: 'string', default: '5' },
      'kdf-duration': { type: 'string' },
      warmup: { type: 'string', default: '1' },
      connections: { type: 'string', default: '32' },
      'login-connections': { type: 'string' },
      sample: { type: 'string', default: '1000' },
      'node-flags': { type: 'string' },
      'large-accounts': { type: 'string', default: '1000000' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const scale = (values.scale ?? process.env.BENCH_SCALE ?? '1k').toLowerCase();
  const num = (name: string, raw: string | undefined, min: number): number => {
    const v = Number(raw);
    if (!Number.isFinite(v) || v < min) {
      console.error(`bench: --${name} expects a number ≥ ${min}, got "${raw}"\n\n${HELP}`);
      process.exit(2);
    }
    return v;
  };
  if (scale !== '1k' && scale !== '1m') {
    console.error(`bench: --scale expects 1k or 1m, got "${scale}"`);
    process.exit(2);
  }
  const duration = num('duration', values.duration, 1);
  return {
    scale,
    rounds: Math.round(num('rounds', values.rounds, 1)),
    duration,
    kdfDuration: values['kdf-duration'] ? num('kdf-duration', values['kdf-duration'], 1) : 2 * duration,
    warmup: num('warmup', values.warmup, 0),
    connections: Math.round(num('connections', values.connections, 1)),
    loginConnections: values['login-connections']
      ? Math.round(num('login-connections', values['login-connections'], 1))
      : 0,
    sample: Math.round(num('sample', values.sample, 1)),
    largeAccounts: Math.round(num('large-accounts', values['large-accounts'], 1000)),
    nodeFlags: values['node-flags'] === undefined ? undefined : values['node-flags'].split(/\s+/).filter(Boolean),
    databaseUrl: process.env.BENCH_DATABASE_URL || DEFAULT_URL,
  };
}

/** The service's environment: only what the bench sets, so no stray SCRYPT_* or RATE_LIMIT_*
 * from the caller's shell changes what is measured. */
function serviceEnv(databaseUrl: string, jwtSecret: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: databaseUrl,
    JWT_SECRET: jwtSecret,
    ...extra,
  };
}

interface Credentials {
  key: LoadSpec['variants'];
  jwt: LoadSpec['variants'];
  baseline: LoadSpec['variants'];
  login: LoadSpec['variants'];
}

function credentialsFor(seeded: SeedResult, jwt: JwtService): Credentials {
  const s: SeededAccount[] = seeded.sample;
  return {
    key: s.map((a) => ({ headers: { authorization: `Bearer ${a.apiKey}` } })),
    // Minted with the service's secret, issuer and audience at token version 0: the tokens a
    // login would hand out, without spending a scrypt hash on each.
    jwt: s.map((a) => ({ headers: { authorization: `Bearer ${jwt.sign(a.id, 0)}` } })),
    baseline: s.map((a) => ({ headers: { 'x-account-id': a.id } })),
    login: s.map((a) => ({ headers: {}, body: JSON.stringify({ username: a.username, password: seeded.password }) })),
  };
}

/** One request of each kind must succeed before anything is measured. */
async function smokeTest(serviceUrl: string, baselineUrl: string, creds: Credentials, label: string): Promise<void> {
  const checks: [string, string, RequestInit, LoadSpec['variants'][number]][] = [
    ['API key read', `${serviceUrl}/v1/me/account`, {}, creds.key[0]!],
    ['JWT read', `${serviceUrl}/v1/me/account`, {}, creds.jwt[0]!],
    ['baseline read', `${baselineUrl}/account`, {}, creds.baseline[0]!],
    ['login', `${serviceUrl}/v1/auth/login`, { method: 'POST' }, creds.login[0]!],
  ];
  for (const [what, url, init, v] of checks) {
    const res = await fetch(url, {
      ...init,
      headers: { ...v.headers, ...(v.body ? { 'content-type': 'application/json' } : {}) },
      body: v.body,
    });
    if (res.status !== 200) throw new Error(`${label}: ${what} answered ${res.status}: ${await res.text()}`);
    await res.arrayBuffer().catch(() => undefined);
  }
}

/** What `npm start` runs (package.json scripts.start = "node [flags] <entry>"), built first as
 * `npm start` builds it, so the bench measures the service as it is started in production. */
function startCommand(): { flags: string[]; entry: string } {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts?: { start?: string } };
  const m = /^node((?:\s+--?[\w-]+(?:=\S+)?)*)\s+(\S+\.[jt]s)$/.exec(pkg.scripts?.start?.trim() ?? '');
  if (!m) throw new Error(`bench: package.json's start script is not "node [flags] <file>": ${pkg.scripts?.start}`);
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  return { flags: m[1]!.trim().split(/\s+/).filter(Boolean), entry: m[2]! };
}

interface Row {
  figure: string;
  rps?: number;
  p50?: number;
  p99?: number;
  errors?: number;
  cpuUs?: number;
  /** shown instead of req/s */
  value?: string;
  ratio?: number;
  ratioTo?: string;
  target?: string;
  met?: boolean;
}

async function main(): Promise<void> {
  const opts = parseOptions();
  const started = new Date();
  const loadBefore = os.loadavg();
  const jwtSecret = randomBytes(48).toString('base64url');
  const config = loadConfig(serviceEnv(opts.databaseUrl, jwtSecret));
  const loginConnections = opts.loginConnections || 4 * config.kdfConcurrency;
  const start = startCommand();
  const flags = opts.nodeFlags ?? start.flags;
  const safeUrl = opts.databaseUrl.replace(/\/\/([^:@/]+):[^@]*@/, '//$1:***@');
  console.log(`rst auth bench — PostgreSQL ${safeUrl} (set BENCH_DATABASE_URL to point elsewhere; --help for options)`);
  console.log(
    `scale ${opts.scale}, ${opts.rounds} rounds × ${opts.duration} s reads / ${opts.kdfDuration} s logins, warm-up ${opts.warmup} s, ` +
      `${opts.connections} read connections, ${loginConnections} login connections; scrypt logN ${config.scrypt.logN} r ${config.scrypt.r} p ${config.scrypt.p} × ${config.kdfConcurrency}` +
      `; node ${[...flags, start.entry].join(' ')}`,
  );

  const pgVersion = await admin(
    opts.databaseUrl,
    async (c) => (await c.query('show server_version')).rows[0].server_version as string,
  );
  const scales: { label: '1k' | '1m'; accounts: number }[] = [{ label: '1k', accounts: 1000 }];
  if (opts.scale === '1m') scales.push({ label: '1m', accounts: opts.largeAccounts });
  const large = opts.largeAccounts.toLocaleString('en');

  const databases: string[] = [];
  cleanups.push(async () => {
    for (const name of databases) {
      await admin(opts.databaseUrl, (c) => c.query(`drop database if exists "${name}" with (force)`)).catch((err) =>
        console.error(`could not drop database ${name}: ${err instanceof Error ? err.message : err}`),
      );
    }
  });

  const jwt = new JwtService({
    secret: jwtSecret,
    ttlSeconds: config.jwtTtlSeconds,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
  });
  const seeds: Record<string, SeedResult> = {};
  const creds: Record<string, Credentials> = {};
  const dbUrls: Record<string, string> = {};
  for (const scale of scales) {
    const name = freeDatabaseName(scale.label);
    await admin(opts.databaseUrl, (c) => c.query(`create database "${name}"`));
    databases.push(name);
    dbUrls[scale.label] = withDatabase(opts.databaseUrl, name);
    console.log(`seeding ${scale.accounts.toLocaleString('en')} accounts + keys into ${name} …`);
    const seeded = await seed({
      databaseUrl: dbUrls[scale.label]!,
      accounts: scale.accounts,
      sample: Math.min(opts.sample, scale.accounts),
      scrypt: config.scrypt,
      log: (line) => console.log(line),
    });
    // Every sampled key must pass the service's own format check (shape + CRC32), or the load
    // would measure 401s.
    if (!seeded.sample.every((a) => isWellFormedApiKey(a.apiKey)))
      throw new Error('seeding produced a malformed API key');
    seeds[scale.label] = seeded;
    console.log(
      `  seeded in ${seeded.seconds.total.toFixed(1)} s (accounts ${seeded.seconds.accounts.toFixed(1)} s, keys ${seeded.seconds.keys.toFixed(1)} s)`,
    );
    creds[scale.label] = credentialsFor(seeded, jwt);
  }

  // The pool size the service's knex uses, read from the same code, so the baseline matches it.
  const probe = openDatabase({ databaseUrl: dbUrls['1k']!, dataDir: '' });
  const poolMax = Number((probe.client as { config: { pool?: { max?: number } } }).config.pool?.max ?? 10);
  await probe.destroy();

  const announceService = /rst auth listening on (http:\/\/\S+)/;
  const announceBaseline = /baseline listening on (http:\/\/\S+)/;
  const services: Record<string, Proc> = {};
  const baselines: Record<string, Proc> = {};
  for (const scale of scales) {
    services[scale.label] = await startProcess(
      `service ${scale.label}`,
      [...flags, start.entry],
      serviceEnv(dbUrls[scale.label]!, jwtSecret),
      announceService,
    );
    baselines[scale.label] = await startProcess(
      `baseline ${scale.label}`,
      ['scripts/baseline.ts', '--database-url', dbUrls[scale.label]!, '--pool', String(poolMax)],
      { PATH: process.env.PATH, NODE_ENV: 'production' },
      announceBaseline,
    );
    await smokeTest(services[scale.label]!.url, baselines[scale.label]!.url, creds[scale.label]!, scale.label);
  }

  // WEB_CONCURRENCY=2 counts only if server.ts really forks two workers (config.ts may parse the
  // variable before server.ts acts on it).
  let cluster: Proc | undefined;
  let clusterNote = '';
  try {
    if (loadConfig(serviceEnv(dbUrls['1k']!, jwtSecret, { WEB_CONCURRENCY: '2' })).webConcurrency !== 2)
      clusterNote = 'config.ts does not read WEB_CONCURRENCY';
  } catch (err) {
    clusterNote = `config.ts refuses WEB_CONCURRENCY=2: ${err instanceof Error ? err.message : err}`;
  }
  if (!clusterNote) {
    cluster = await startProcess(
      'service 1k WEB_CONCURRENCY=2',
      [...flags, start.entry],
      serviceEnv(dbUrls['1k']!, jwtSecret, { WEB_CONCURRENCY: '2' }),
      announceService,
    );
    const workers = processTree(cluster.proc.pid!).length - 1;
    if (workers !== 2) {
      clusterNote = `server.ts started ${workers} worker processes for WEB_CONCURRENCY=2`;
      await cluster.stop();
      cluster = undefined;
    } else {
      await smokeTest(cluster.url, baselines['1k']!.url, creds['1k']!, 'WEB_CONCURRENCY=2');
    }
  }
  if (clusterNote) console.log(`WEB_CONCURRENCY=2: not available (${clusterNote})`);

  const svc = services['1k']!;
  const base = baselines['1k']!;
  const rss = new RssWatch(() => [
    ...Object.values(services).map((s) => s.proc.pid!),
    ...(cluster ? [cluster.proc.pid!] : []),
  ]);

  const figures: Record<string, LoadResult[]> = {};
  const kdf: number[] = [];
  const record = (phase: string, r: LoadResult) => {
    figures[phase] ??= [];
    figures[phase].push(r);
    const rate = r.rps >= 100 ? Math.round(r.rps).toLocaleString('en') : r.rps.toFixed(2);
    const cpu = r.cpuUs === undefined ? '' : `  CPU ${r.cpuUs} µs/req`;
    console.log(
      `  ${phase.padEnd(26)} ${rate.padStart(7)} req/s  p50 ${r.p50} ms  p99 ${r.p99} ms  errors ${r.errors}${cpu}`,
    );
  };
  const reads = (url: string, pathName: string, variants: LoadSpec['variants']): LoadSpec => ({
    url,
    method: 'GET',
    path: pathName,
    variants,
    connections: opts.connections,
    warmup: opts.warmup,
    duration: opts.duration,
  });
  const logins = (duration: number): LoadSpec => ({
    url: svc.url,
    method: 'POST',
    path: '/v1/auth/login',
    variants: creds['1k']!.login,
    connections: loginConnections,
    warmup: opts.warmup,
    duration,
  });
  // Reads measured while a login storm keeps the service's KDF saturated (the storm's own warm-up
  // fills the hashing queue before the reads start).
  const underStorm = async (read: LoadSpec): Promise<{ read: LoadResult; storm: LoadResult }> => {
    const storm = startLoad(logins(0));
    await storm.warm;
    const result = await runLoad(read);
    storm.stop();
    return { read: result, storm: await storm.result };
  };

  const k = creds['1k']!;
  const kdfPhase = async (label: string) => {
    const bound = await measureKdf({
      params: config.scrypt,
      concurrency: config.kdfConcurrency,
      warmup: opts.warmup,
      duration: opts.kdfDuration,
    });
    console.log(
      `  ${label.padEnd(26)} ${bound.rate.toFixed(2).padStart(7)} hashes/s (${bound.perThread.map((r) => r.toFixed(2)).join(' + ')})`,
    );
    return bound.rate;
  };
  // JIT, pools and caches of every process warm up once, unmeasured, before round 1.
  console.log('warming up');
  await runLoad({ ...reads(base.url, '/account', k.baseline), duration: opts.warmup + 1 });
  for (const target of [svc, ...(cluster ? [cluster] : [])]) {
    await runLoad({ ...reads(target.url, '/v1/me/account', k.key), duration: opts.warmup + 1 });
    await runLoad({ ...reads(target.url, '/v1/me/account', k.jwt), duration: opts.warmup + 1 });
  }
  await runLoad(logins(3));
  for (let round = 1; round <= opts.rounds; round++) {
    console.log(`round ${round}/${opts.rounds}`);
    record('baseline', await runLoad(reads(base.url, '/account', k.baseline), base.proc.pid));
    record('key', await runLoad(reads(svc.url, '/v1/me/account', k.key), svc.proc.pid));
    record('jwt', await runLoad(reads(svc.url, '/v1/me/account', k.jwt), svc.proc.pid));
    if (cluster) {
      record('key WEB_CONCURRENCY=2', await runLoad(reads(cluster.url, '/v1/me/account', k.key), cluster.proc.pid));
      record('jwt WEB_CONCURRENCY=2', await runLoad(reads(cluster.url, '/v1/me/account', k.jwt), cluster.proc.pid));
    }
    // The bound is measured just before and just after the logins and averaged, so a burst of
    // outside load during one of them does not decide the ratio on its own.
    const before = await kdfPhase('KDF bound (before)');
    record('login', await runLoad(logins(opts.kdfDuration)));
    const after = await kdfPhase('KDF bound (after)');
    kdf.push((before + after) / 2);
    const svcStorm = await underStorm(reads(svc.url, '/v1/me/account', k.key));
    record('key during storm', svcStorm.read);
    record('login (storm, service)', svcStorm.storm);
    const baseStorm = await underStorm(reads(base.url, '/account', k.baseline));
    record('baseline during storm', baseStorm.read);
    record('login (storm, baseline)', baseStorm.storm);
    if (services['1m']) {
      const m = creds['1m']!;
      record(
        'baseline 1m',
        await runLoad(reads(baselines['1m']!.url, '/account', m.baseline), baselines['1m']!.proc.pid),
      );
      record('key 1m', await runLoad(reads(services['1m'].url, '/v1/me/account', m.key), services['1m'].proc.pid));
      record('jwt 1m', await runLoad(reads(services['1m'].url, '/v1/me/account', m.jwt), services['1m'].proc.pid));
    }
  }
  rss.stop();
  const loadAfter = os.loadavg();

  // ---------------------------------------------------------------- the table
  const med = (phase: string, f: 'rps' | 'p50' | 'p99' | 'cpuUs') =>
    median((figures[phase] ?? []).map((r) => r[f] ?? NaN));
  const errs = (phase: string) => (figures[phase] ?? []).reduce((a, r) => a + r.errors, 0);
  // Ratios pair the phases of one round (run minutes apart at most), then take the median over
  // the rounds: slow drifts of the machine's load cancel out within a pair.
  const paired = (phase: string, f: 'rps' | 'p99', other: string | number[], g: 'rps' | 'p99' = f) =>
    median(
      (figures[phase] ?? []).map((r, i) => {
        const o = typeof other === 'string' ? figures[other]?.[i]?.[g] : other[i];
        return o === undefined ? NaN : r[f] / o;
      }),
    );
  const phaseRow = (figure: string, phase: string, extra: Partial<Row> = {}): Row => ({
    figure,
    rps: med(phase, 'rps'),
    p50: med(phase, 'p50'),
    p99: med(phase, 'p99'),
    errors: errs(phase),
    cpuUs: med(phase, 'cpuUs'),
    ...extra,
  });
  const rows: Row[] = [];
  rows.push(phaseRow('baseline: node:http + pg, one PK select', 'baseline'));
  for (const [figure, phase] of [
    ['owner read by API key, 1 worker', 'key'],
    ['owner read by JWT, 1 worker', 'jwt'],
  ] as const) {
    const ratio = paired(phase, 'rps', 'baseline');
    rows.push(
      phaseRow(figure, phase, {
        ratio,
        ratioTo: 'baseline req/s',
        target: '≥ 0.70×',
        met: ratio >= 0.7 && errs(phase) === 0,
      }),
    );
  }
  if (cluster) {
    for (const [figure, phase, one] of [
      ['owner read by API key, WEB_CONCURRENCY=2', 'key WEB_CONCURRENCY=2', 'key'],
      ['owner read by JWT, WEB_CONCURRENCY=2', 'jwt WEB_CONCURRENCY=2', 'jwt'],
    ] as const) {
      const ratio = paired(phase, 'rps', one);
      rows.push(
        phaseRow(figure, phase, { ratio, ratioTo: '1 worker', target: '> 1×', met: ratio > 1 && errs(phase) === 0 }),
      );
    }
  } else {
    rows.push({
      figure: 'owner reads, WEB_CONCURRENCY=2',
      value: `not available (${clusterNote})`,
      target: '> 1 worker',
    });
  }
  const kdfBound = median(kdf);
  rows.push({
    figure: `KDF bound: scrypt-kdf logN ${config.scrypt.logN} r ${config.scrypt.r} p ${config.scrypt.p}, ${config.kdfConcurrency} at once (hashes/s)`,
    rps: kdfBound,
  });
  const loginRatio = paired('login', 'rps', kdf);
  rows.push(
    phaseRow('logins', 'login', {
      ratio: loginRatio,
      ratioTo: 'KDF bound',
      target: '≥ 0.90×',
      met: loginRatio >= 0.9 && errs('login') === 0,
    }),
  );
  const vsQuiet = paired('key during storm', 'p99', 'key');
  rows.push(
    phaseRow('owner read by API key during a login storm', 'key during storm', {
      ratio: vsQuiet,
      ratioTo: 'p99 without storm',
      target: '≤ 3×',
      met: vsQuiet <= 3,
    }),
  );
  const vsBase = paired('key during storm', 'p99', 'baseline during storm');
  rows.push(
    phaseRow('baseline during the same storm', 'baseline during storm', {
      ratio: vsBase,
      ratioTo: 'service p99 ÷ this p99',
      target: '≤ 2×',
      met: vsBase <= 2,
    }),
  );
  rows.push(
    phaseRow('logins during that storm', 'login (storm, service)', {
      ratio: paired('login (storm, service)', 'rps', kdf),
      ratioTo: 'KDF bound',
    }),
  );
  if (services['1m']) {
    rows.push(
      phaseRow(`baseline at ${large} accounts`, 'baseline 1m', {
        ratio: paired('baseline 1m', 'rps', 'baseline'),
        ratioTo: 'baseline at 1k',
      }),
    );
    for (const [figure, phase, one] of [
      [`owner read by API key, ${large} accounts + keys`, 'key 1m', 'key'],
      [`owner read by JWT, ${large} accounts + keys`, 'jwt 1m', 'jwt'],
    ] as const) {
      const ratio = paired(phase, 'rps', one);
      rows.push(
        phaseRow(figure, phase, {
          ratio,
          ratioTo: 'same at 1k',
          target: '0.85–1.15×',
          met: ratio >= 0.85 && ratio <= 1.15 && errs(phase) === 0,
        }),
      );
    }
  } else {
    rows.push({
      figure: 'owner reads at 1M accounts',
      value: 'not run (--scale 1m or BENCH_SCALE=1m)',
      target: 'within 15% of 1k',
    });
  }
  const peakMb = (pid: number | undefined) => (rss.peakKb.get(pid ?? -1) ?? NaN) / 1024;
  for (const [label, s] of Object.entries(services)) {
    const mb = peakMb(s.proc.pid);
    rows.push({
      figure: `peak RSS, service, 1 worker (${label === '1k' ? '1,000' : large} accounts)`,
      value: `${mb.toFixed(0)} MB`,
      ratio: mb / 250,
      ratioTo: '250 MB',
      target: '< 250 MB',
      met: mb < 250,
    });
  }
  if (cluster) {
    const workers = [...rss.peakKb.keys()].filter(
      (pid) => pid !== cluster!.proc.pid && !Object.values(services).some((s) => s.proc.pid === pid),
    );
    const mb = Math.max(...workers.map(peakMb));
    rows.push({
      figure: 'peak RSS per worker, WEB_CONCURRENCY=2',
      value: `${mb.toFixed(0)} MB (primary ${peakMb(cluster.proc.pid).toFixed(0)} MB)`,
      ratio: mb / 250,
      ratioTo: '250 MB',
      target: '< 250 MB',
      met: mb < 250,
    });
  }

  const num = (x: number | undefined, digits = 1) =>
    x === undefined || !Number.isFinite(x) ? '' : x >= 100 ? Math.round(x).toLocaleString('en') : x.toFixed(digits);
  const head = ['figure', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'CPU µs/req', 'ratio', 'target', 'result'];
  const cells = rows.map((r) => [
    r.figure,
    r.value ?? num(r.rps, 2),
    num(r.p50),
    num(r.p99),
    r.errors === undefined ? '' : String(r.errors),
    num(r.cpuUs, 0),
    r.ratio === undefined || !Number.isFinite(r.ratio) ? '' : `${r.ratio.toFixed(2)}× ${r.ratioTo ?? ''}`.trim(),
    r.target ?? '',
    r.met === undefined ? '' : r.met ? 'met' : 'MISSED',
  ]);
  const table = [
    `| ${head.join(' | ')} |`,
    `| ${head.map((_, i) => (i >= 1 && i <= 5 ? '---:' : '---')).join(' | ')} |`,
    ...cells.map((c) => `| ${c.join(' | ')} |`),
  ].join('\n');
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres: pgVersion,
    loadAverage: {
      before: loadBefore.map((x) => Number(x.toFixed(2))),
      after: loadAfter.map((x) => Number(x.toFixed(2))),
    },
  };
  const summary =
    `${started.toISOString()} — ${machine.cores} cores (${machine.cpu}), ${machine.memoryGb} GB, Node ${machine.node}, PostgreSQL ${machine.postgres}; ` +
    `load average ${loadBefore[0]!.toFixed(1)} before, ${loadAfter[0]!.toFixed(1)} after.\n` +
    `Medians of ${opts.rounds} rounds (${opts.duration} s per read phase, ${opts.kdfDuration} s per login phase, ${opts.warmup} s warm-up); each ratio is the median of the rounds' paired ratios; ` +
    `${opts.connections} connections for reads, ${loginConnections} for logins; the KDF bound is the mean of a measurement just before and just after each login phase; ` +
    `CPU µs/req is the measured process's CPU time per response.`;
  console.log(`\n${summary}\n${table}`);

  const outDir = path.join(ROOT, '.bench');
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `bench-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  const json = {
    date: started.toISOString(),
    machine,
    options: {
      ...opts,
      databaseUrl: safeUrl,
      loginConnections,
      kdfConcurrency: config.kdfConcurrency,
      scrypt: config.scrypt,
      poolMax,
      nodeFlags: flags,
    },
    seeding: Object.fromEntries(
      Object.entries(seeds).map(([label, s]) => [
        label,
        { accounts: s.accounts, sample: s.sample.length, seconds: s.seconds },
      ]),
    ),
    webConcurrency2: cluster ? 'measured' : `not available: ${clusterNote}`,
    rows,
    rounds: figures,
    kdfBound: kdf,
    rssPeakKb: Object.fromEntries(rss.peakKb),
    summary,
    table,
  };
  fs.writeFileSync(file, JSON.stringify(json, null, 2));
  fs.writeFileSync(path.join(outDir, 'latest.json'), JSON.stringify(json, null, 2));
  console.log(`\nwritten to ${path.relative(process.cwd(), file)}`);
}

async function cleanup(): Promise<void> {
  while (cleanups.length) {
    try {
      await cleanups.pop()!();
    } catch (err) {
      console.error('cleanup:', err instanceof Error ? err.message : err);
    }
  }
}

const role = process.argv.find((a) => a.startsWith('--role='))?.slice('--role='.length);
if (role === 'load') await loadRole();
else if (role === 'kdf') await kdfRole();
else if (import.meta.main) {
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
