// The processes under measurement: the service (built and started as `npm start` starts it) and the
// baseline, spawned as children, stopped at cleanup, and watched through /proc for CPU and memory.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { onCleanup } from './cleanup.ts';
import { ROOT } from './options.ts';

export interface Proc {
  name: string;
  url: string;
  /** The service's management listener (GET /metrics), when it announced one. */
  managementUrl: string | undefined;
  proc: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

export const announceService = /rst auth listening on (http:\/\/\S+)/;
export const announceBaseline = /baseline listening on (http:\/\/\S+)/;
export const announceReference = /reference listening on (http:\/\/\S+)/;
const announceManagement = /management: (http:\/\/[^\s)]+)/;

/** Spawns a server script and waits for the line announcing its URL. */
export async function startProcess(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  announce: RegExp,
): Promise<Proc> {
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
  onCleanup(stop);
  const managementUrl = announceManagement.exec(output)?.[1];
  return { name, url, managementUrl, proc, output: () => output, stop };
}

/** The service's environment: only what the bench sets, so no stray SCRYPT_* or RATE_LIMIT_*
 * from the caller's shell changes what is measured. */
export function serviceEnv(
  databaseUrl: string,
  jwtSecret: string,
  extra: Record<string, string> = {},
): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: databaseUrl,
    JWT_SECRET: jwtSecret,
    // The production guardrails want real mail and an https APP_URL; the bench sends no mail it
    // reads, so mail goes to stdout on purpose (kept only as the last 32 KB of output).
    MAIL_TRANSPORT: 'console',
    APP_URL: 'https://auth.bench.invalid',
    // One service key sends every introspection: its per-key limit would measure 429s.
    RATE_LIMIT_INTROSPECT: '999999999/60',
    // The credential cache's counters are read from /metrics after the rounds. The management
    // listener serves it without a token and leaves the public port's layers as they are, so
    // the reads measured there pay nothing for it.
    MANAGEMENT_PORT: '0',
    ...extra,
  };
}

/** What `npm start` runs (package.json scripts.start = "node [flags] <entry>"), built first as
 * `npm start` builds it, so the bench measures the service as it is started in production. */
export function startCommand(): { flags: string[]; entry: string } {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts?: { start?: string } };
  const m = /^node((?:\s+--?[\w-]+(?:=\S+)?)*)\s+(\S+\.[jt]s)$/.exec(pkg.scripts?.start?.trim() ?? '');
  if (!m) throw new Error(`bench: package.json's start script is not "node [flags] <file>": ${pkg.scripts?.start}`);
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  return { flags: m[1]!.trim().split(/\s+/).filter(Boolean), entry: m[2]! };
}

/** The process and its direct children (cluster workers), from /proc. */
export function processTree(pid: number): number[] {
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
export function cpuMs(pid: number): number {
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
export class RssWatch {
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
