// The result: one row per figure (medians of the rounds, ratios against the stack's own limits and
// the targets), printed as a Markdown table and written with every round's raw figures to .bench/.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LoadResult } from './load.ts';
import { ROOT } from './options.ts';
import type { Measured } from './rounds.ts';
import type { Run, Seeded, Servers } from './setup.ts';

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
  /** A row with a target: its ratio, what the ratio is to, the target and whether it is met. */
  judged(figure: string, phase: string, ratio: number, ratioTo: string, target: string, met: boolean): Row {
    return this.row(figure, phase, { ratio, ratioTo, target, met });
  }
}

function readRows(f: Rounds, servers: Servers): Row[] {
  const rows: Row[] = [f.row('baseline: node:http + pg, one PK select', 'baseline')];
  for (const [figure, phase] of [
    ['owner read by API key, 1 worker', 'key'],
    ['owner read by JWT, 1 worker', 'jwt'],
  ] as const) {
    const ratio = f.paired(phase, 'rps', 'baseline');
    rows.push(f.judged(figure, phase, ratio, 'baseline req/s', '≥ 0.70×', ratio >= 0.7 && f.errs(phase) === 0));
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
      ['owner read by API key, WEB_CONCURRENCY=2', 'key WEB_CONCURRENCY=2', 'key'],
      ['owner read by JWT, WEB_CONCURRENCY=2', 'jwt WEB_CONCURRENCY=2', 'jwt'],
    ] as const) {
      const ratio = f.paired(phase, 'rps', one);
      rows.push(f.judged(figure, phase, ratio, '1 worker', '> 1×', ratio > 1 && f.errs(phase) === 0));
    }
  } else {
    rows.push({
      figure: 'owner reads, WEB_CONCURRENCY=2',
      value: `not available (${servers.clusterNote})`,
      target: '> 1 worker',
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
    f.judged('logins', 'login', login, 'KDF bound', '≥ 0.90×', login >= 0.9 && f.errs('login') === 0),
    f.judged(
      'owner read by API key during a login storm',
      'key during storm',
      vsQuiet,
      'p99 without storm',
      '≤ 3×',
      vsQuiet <= 3,
    ),
    f.judged(
      'baseline during the same storm',
      'baseline during storm',
      vsBase,
      'service p99 ÷ this p99',
      '≤ 2×',
      vsBase <= 2,
    ),
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
        target: 'within 15% of 1k',
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
    [`owner read by API key, ${run.large} accounts + keys`, 'key 1m', 'key'],
    [`owner read by JWT, ${run.large} accounts + keys`, 'jwt 1m', 'jwt'],
  ] as const) {
    const ratio = f.paired(phase, 'rps', one);
    const met = ratio >= 0.85 && ratio <= 1.15 && f.errs(phase) === 0;
    rows.push(f.judged(figure, phase, ratio, 'same at 1k', '0.85–1.15×', met));
  }
  return rows;
}

function memoryRows(run: Run, servers: Servers, rssPeakKb: Map<number, number>): Row[] {
  const { services, cluster } = servers;
  const peakMb = (pid: number | undefined) => (rssPeakKb.get(pid ?? -1) ?? NaN) / 1024;
  const under250 = (mb: number): Partial<Row> => ({
    ratio: mb / 250,
    ratioTo: '250 MB',
    target: '< 250 MB',
    met: mb < 250,
  });
  const rows: Row[] = Object.entries(services).map(([label, s]) => {
    const mb = peakMb(s.proc.pid);
    return {
      figure: `peak RSS, service, 1 worker (${label === '1k' ? '1,000' : run.large} accounts)`,
      value: `${mb.toFixed(0)} MB`,
      ...under250(mb),
    };
  });
  if (cluster) {
    const workers = [...rssPeakKb.keys()].filter(
      (pid) => pid !== cluster.proc.pid && !Object.values(services).some((s) => s.proc.pid === pid),
    );
    const mb = Math.max(...workers.map(peakMb));
    rows.push({
      figure: 'peak RSS per worker, WEB_CONCURRENCY=2',
      value: `${mb.toFixed(0)} MB (primary ${peakMb(cluster.proc.pid).toFixed(0)} MB)`,
      ...under250(mb),
    });
  }
  return rows;
}

function renderTable(rows: Row[]): string {
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
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map((_, i) => (i >= 1 && i <= 5 ? '---:' : '---')).join(' | ')} |`,
    ...cells.map((c) => `| ${c.join(' | ')} |`),
  ].join('\n');
}

export function report(run: Run, seeded: Seeded, servers: Servers, measured: Measured): void {
  const { opts, started, loadBefore, config } = run;
  const { loadAfter } = measured;
  const f = new Rounds(measured.figures);
  const rows = [
    ...readRows(f, servers),
    ...loginRows(f, run, measured.kdf),
    ...scaleRows(f, run, servers),
    ...memoryRows(run, servers, measured.rssPeakKb),
  ];
  const table = renderTable(rows);
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres: run.pgVersion,
    loadAverage: {
      before: loadBefore.map((x) => Number(x.toFixed(2))),
      after: loadAfter.map((x) => Number(x.toFixed(2))),
    },
  };
  const summary =
    `${started.toISOString()} — ${machine.cores} cores (${machine.cpu}), ${machine.memoryGb} GB, Node ${machine.node}, PostgreSQL ${machine.postgres}; ` +
    `load average ${loadBefore[0]!.toFixed(1)} before, ${loadAfter[0]!.toFixed(1)} after.\n` +
    `Medians of ${opts.rounds} rounds (${opts.duration} s per read phase, ${opts.kdfDuration} s per login phase, ${opts.warmup} s warm-up); each ratio is the median of the rounds' paired ratios; ` +
    `${opts.connections} connections for reads, ${run.loginConnections} for logins; the KDF bound is the mean of a measurement just before and just after each login phase; ` +
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
      databaseUrl: run.safeUrl,
      loginConnections: run.loginConnections,
      kdfConcurrency: config.kdfConcurrency,
      scrypt: config.scrypt,
      poolMax: servers.poolMax,
      nodeFlags: run.flags,
    },
    seeding: Object.fromEntries(
      Object.entries(seeded.seeds).map(([label, s]) => [
        label,
        { accounts: s.accounts, sample: s.sample.length, seconds: s.seconds },
      ]),
    ),
    webConcurrency2: servers.cluster ? 'measured' : `not available: ${servers.clusterNote}`,
    rows,
    rounds: measured.figures,
    kdfBound: measured.kdf,
    rssPeakKb: Object.fromEntries(measured.rssPeakKb),
    summary,
    table,
  };
  fs.writeFileSync(file, JSON.stringify(json, null, 2));
  fs.writeFileSync(path.join(outDir, 'latest.json'), JSON.stringify(json, null, 2));
  console.log(`\nwritten to ${path.relative(process.cwd(), file)}`);
}
