// The figures, one row each: medians of the rounds, ratios against the stack's own limits, and
// each row's verdict against its target (targets.ts). report.ts prints and writes them.
import { type CacheFigures, type CacheSample, cacheFigures } from './cacheMetrics.ts';
import type { LoadResult } from './load.ts';
import type { Measured } from './rounds.ts';
import type { Run, Servers } from './setup.ts';
import { type Result, TARGETS, type TargetId } from './targets.ts';

export interface Row {
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
  /** the issue-20 target this row's figure counts towards */
  targetId?: TargetId;
  result?: Result;
}

const median = (xs: number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The rounds' figures of each phase, reduced to what a row shows. */
class Rounds {
  private readonly figures: Record<string, LoadResult[]>;
  constructor(figures: Record<string, LoadResult[]>) {
    this.figures = figures;
  }
  med(phase: string, f: 'rps' | 'p50' | 'p99' | 'cpuUs'): number {
    return median((this.figures[phase] ?? []).map((r) => r[f] ?? NaN));
  }
  errs(phase: string): number {
    return (this.figures[phase] ?? []).reduce((a, r) => a + r.errors, 0);
  }
  // Ratios pair the phases of one round (run minutes apart at most), then take the median over
  // the rounds: slow drifts of the machine's load cancel out within a pair.
  paired(phase: string, f: 'rps' | 'p99', other: string | number[], g: 'rps' | 'p99' = f): number {
    return median(
      (this.figures[phase] ?? []).map((r, i) => {
        const o = typeof other === 'string' ? this.figures[other]?.[i]?.[g] : other[i];
        return o === undefined ? NaN : r[f] / o;
      }),
    );
  }
  row(figure: string, phase: string, extra: Partial<Row> = {}): Row {
    return {
      figure,
      rps: this.med(phase, 'rps'),
      p50: this.med(phase, 'p50'),
      p99: this.med(phase, 'p99'),
      errors: this.errs(phase),
      cpuUs: this.med(phase, 'cpuUs'),
      ...extra,
    };
  }
  /** A row judged against a target of the issue; an error in any round misses it. */
  judged(figure: string, phase: string, ratio: number, ratioTo: string, targetId: TargetId): Row {
    const result = this.errs(phase) > 0 ? 'MISSED' : TARGETS[targetId].judge(ratio);
    return this.row(figure, phase, { ratio, ratioTo, target: TARGETS[targetId].short, targetId, result });
  }
}

function readRows(f: Rounds, servers: Servers): Row[] {
  const rows: Row[] = [
    f.row('baseline: node:http + pg, one PK select', 'baseline'),
    // No target: how far above the baseline a read can go once the database is off its path.
    f.row('reference: node:http + Map, no database', 'reference', {
      ratio: f.paired('reference', 'rps', 'baseline'),
      ratioTo: 'baseline req/s',
    }),
  ];
  for (const [figure, phase, targetId] of [
    ['key reads (cache)', 'key', 'cached'],
    ['JWT reads (cache)', 'jwt', 'cached'],
    ['key reads (cache off)', 'key cache off', 'cacheOff'],
    ['JWT reads (cache off)', 'jwt cache off', 'cacheOff'],
  ] as const) {
    rows.push(f.judged(figure, phase, f.paired(phase, 'rps', 'baseline'), 'baseline req/s', targetId));
  }
  // No target of its own: a product backend's check of a customer's key, against the same baseline.
  rows.push(
    f.row('introspection of an API key (service key), 1 worker', 'introspect', {
      ratio: f.paired('introspect', 'rps', 'baseline'),
      ratioTo: 'baseline req/s',
    }),
  );
  if (servers.cluster) {
    for (const [figure, phase, one] of [
      ['key reads (cache), WEB_CONCURRENCY=2', 'key WEB_CONCURRENCY=2', 'key'],
      ['JWT reads (cache), WEB_CONCURRENCY=2', 'jwt WEB_CONCURRENCY=2', 'jwt'],
    ] as const) {
      rows.push(f.judged(figure, phase, f.paired(phase, 'rps', one), '1 worker', 'cluster'));
    }
  } else {
    rows.push({
      figure: 'owner reads, WEB_CONCURRENCY=2',
      value: `not available (${servers.clusterNote})`,
      target: TARGETS.cluster.short,
      targetId: 'cluster',
      result: 'n/a',
    });
  }
  return rows;
}

function loginRows(f: Rounds, run: Run, kdf: number[]): Row[] {
  const { config } = run;
  const rows: Row[] = [
    {
      figure: `KDF bound: scrypt-kdf logN ${config.scrypt.logN} r ${config.scrypt.r} p ${config.scrypt.p}, ${config.kdfConcurrency} at once (hashes/s)`,
      rps: median(kdf),
    },
  ];
  const login = f.paired('login', 'rps', kdf);
  const vsQuiet = f.paired('key during storm', 'p99', 'key');
  const vsBase = f.paired('key during storm', 'p99', 'baseline during storm');
  rows.push(
    f.judged('logins', 'login', login, 'KDF bound', 'logins'),
    // Not a target of issue 20; kept from the targets before it.
    f.row('key reads (cache) during a login storm', 'key during storm', {
      ratio: vsQuiet,
      ratioTo: 'p99 without storm',
      target: '≤ 3×',
      result: !Number.isFinite(vsQuiet) ? 'n/a' : vsQuiet <= 3 ? 'met' : 'MISSED',
    }),
    f.judged('baseline during the same storm', 'baseline during storm', vsBase, 'service p99 ÷ this p99', 'storm'),
    f.row('logins during that storm', 'login (storm, service)', {
      ratio: f.paired('login (storm, service)', 'rps', kdf),
      ratioTo: 'KDF bound',
    }),
  );
  return rows;
}

function scaleRows(f: Rounds, run: Run, servers: Servers): Row[] {
  if (!servers.services['1m']) {
    return [
      {
        figure: 'owner reads at 1M accounts',
        value: 'not run (--scale 1m or BENCH_SCALE=1m)',
        target: TARGETS.scale.short,
        targetId: 'scale',
        result: 'n/a',
      },
    ];
  }
  const rows: Row[] = [
    f.row(`baseline at ${run.large} accounts`, 'baseline 1m', {
      ratio: f.paired('baseline 1m', 'rps', 'baseline'),
      ratioTo: 'baseline at 1k',
    }),
  ];
  for (const [figure, phase, one] of [
    [`key reads (cache), ${run.large} accounts + keys`, 'key 1m', 'key'],
    [`JWT reads (cache), ${run.large} accounts + keys`, 'jwt 1m', 'jwt'],
  ] as const) {
    rows.push(f.judged(figure, phase, f.paired(phase, 'rps', one), 'same at 1k', 'scale'));
  }
  return rows;
}

function memoryRows(run: Run, servers: Servers, rssPeakKb: Map<number, number>): Row[] {
  const { services, cacheOff, cluster } = servers;
  const peakMb = (pid: number | undefined) => (rssPeakKb.get(pid ?? -1) ?? NaN) / 1024;
  const judged = (figure: string, mb: number, value = `${mb.toFixed(0)} MB`): Row => ({
    figure,
    value,
    ratio: mb / 200,
    ratioTo: '200 MB',
    target: TARGETS.rss.short,
    targetId: 'rss',
    result: TARGETS.rss.judge(mb),
  });
  const rows: Row[] = Object.entries(services).map(([label, s]) =>
    judged(`peak RSS, service, 1 worker (${label === '1k' ? '1,000' : run.large} accounts)`, peakMb(s.proc.pid)),
  );
  rows.push(judged('peak RSS, service, CREDENTIAL_CACHE=off', peakMb(cacheOff.proc.pid)));
  if (cluster) {
    // Every other process the watch saw is a worker of the cluster.
    const single = new Set([cluster, cacheOff, ...Object.values(services)].map((s) => s.proc.pid));
    const workers = [...rssPeakKb.keys()].filter((pid) => !single.has(pid));
    const mb = Math.max(...workers.map(peakMb));
    rows.push(
      judged(
        'peak RSS per worker, WEB_CONCURRENCY=2',
        mb,
        `${mb.toFixed(0)} MB (primary ${peakMb(cluster.proc.pid).toFixed(0)} MB)`,
      ),
    );
  }
  return rows;
}

// Why a cache figure is missing: /metrics did not answer, or answered without the cache's series.
const noCache = (sample: CacheSample | undefined): string =>
  sample
    ? 'n/a (no rst_credential_cache_* series on /metrics: a build without the cache)'
    : 'n/a (/metrics did not answer)';

// No targets: what the cache did while the (cache) rows were measured, read from its own /metrics.
function cacheRows(samples: Measured['cache'], cached: CacheFigures | undefined, off: CacheFigures | undefined): Row[] {
  const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : 'n/a');
  const n = (x: number) => (Number.isFinite(x) ? x.toLocaleString('en') : 'n/a');
  if (!cached)
    return [{ figure: 'credential cache hit ratio, evictions, listener', value: noCache(samples.cached.after) }];
  const listener = cached.listenerUp === undefined ? 'n/a' : cached.listenerUp ? 'up' : 'DOWN';
  // The cache-off service must show no hits, or its rows measured a cache after all.
  const offHits = off
    ? `${n(off.hits)} hits, ${n(off.misses)} misses${off.hits > 0 ? ' (not off!)' : ''}`
    : noCache(samples.off.after);
  return [
    {
      figure: 'credential cache hit ratio: hits ÷ (hits + misses)',
      value: `${pct(cached.hitRatio.rounds)} in the rounds (${n(cached.hits)} hits, ${n(cached.misses)} misses); ${pct(cached.hitRatio.total)} since start`,
    },
    {
      figure: 'credential cache evictions',
      value: `${n(cached.evictions.rounds)} in the rounds, ${n(cached.evictions.total)} since start; ${n(cached.entries)} entries at the end`,
    },
    { figure: 'credential cache LISTEN connection (listener_up)', value: listener },
    { figure: 'credential cache of the CREDENTIAL_CACHE=off service, in the rounds', value: offHits },
  ];
}

export const ratioCell = (r: Row): string =>
  r.ratio === undefined || !Number.isFinite(r.ratio) ? '' : `${r.ratio.toFixed(2)}× ${r.ratioTo ?? ''}`.trim();

/** Every row of the report, and the cache's figures they were made from. */
export function allRows(
  run: Run,
  servers: Servers,
  measured: Measured,
): { rows: Row[]; cache: Record<'cached' | 'off', CacheFigures | undefined> } {
  const f = new Rounds(measured.figures);
  const cache = {
    cached: cacheFigures(measured.cache.cached.before, measured.cache.cached.after),
    off: cacheFigures(measured.cache.off.before, measured.cache.off.after),
  };
  const rows = [
    ...readRows(f, servers),
    ...loginRows(f, run, measured.kdf),
    ...scaleRows(f, run, servers),
    ...memoryRows(run, servers, measured.rssPeakKb),
    ...cacheRows(measured.cache, cache.cached, cache.off),
  ];
  return { rows, cache };
}
