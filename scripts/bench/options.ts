// The bench's command line: flags, their defaults and the help text.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** The repository the bench builds and measures. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface Options {
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
  --kdf-duration S       seconds per login phase (default 2 × duration); the KDF bound is
                         measured for half of it just before and half just after each
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

export function parseOptions(): Options {
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
