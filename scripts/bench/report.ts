// The result: the rows (rows.ts) printed as a Markdown table, then the targets of the issue with
// their figures (targets.ts), all written with every round's raw figures to .bench/.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './options.ts';
import type { Measured } from './rounds.ts';
import { allRows, type Row, ratioCell } from './rows.ts';
import type { Run, Seeded, Servers } from './setup.ts';
import { renderTargets, targetLines } from './targets.ts';

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
    ratioCell(r),
    r.target ?? '',
    r.result ?? '',
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
  const { rows, cache } = allRows(run, servers, measured);
  const table = renderTable(rows);
  // Each target's figures are the rows already judged above, shown as the table shows them.
  const targets = targetLines(rows.map((r) => ({ ...r, shown: r.value ?? ratioCell(r) })));
  const targetTable = renderTargets(targets);
  const seconds = Math.round((Date.now() - started.getTime()) / 1000);
  const took = `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
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
    `load average ${loadBefore[0]!.toFixed(1)} before, ${loadAfter[0]!.toFixed(1)} after; the bench took ${took} up to this report.\n` +
    `Medians of ${opts.rounds} rounds (${opts.duration} s per read phase, ${opts.kdfDuration} s per login phase, ${opts.warmup} s warm-up); each ratio is the median of the rounds' paired ratios; ` +
    `${opts.connections} connections for reads, ${run.loginConnections} for logins; the KDF bound is the mean of a measurement just before and just after each login phase, each half as long (2 s at least); ` +
    `CPU µs/req is the measured process's CPU time per response.`;
  console.log(`\n${summary}\n${table}\n\n${targetTable}`);

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
    credentialCache: { ...cache, samples: measured.cache },
    targets,
    seconds,
    summary,
    table,
    targetTable,
  };
  fs.writeFileSync(file, JSON.stringify(json, null, 2));
  fs.writeFileSync(path.join(outDir, 'latest.json'), JSON.stringify(json, null, 2));
  console.log(`\nwritten to ${path.relative(process.cwd(), file)}`);
}
