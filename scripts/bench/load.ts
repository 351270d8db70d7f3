// The load generator: autocannon in a child process of its own, never inside a process being
// measured. The parent side (startLoad, runLoad) forks this file and sends it one LoadSpec.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { awaitMessage, forkChild, receiveSpec } from './ipc.ts';
import { cpuMs } from './servers.ts';

export interface LoadSpec {
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

export interface LoadResult {
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

// ------------------------------------------------------------------ the child

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
  const spec = await receiveSpec<LoadSpec>();
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

// ------------------------------------------------------------------ the parent's side

const SELF = fileURLToPath(import.meta.url);

/** Starts a load generator; `result` settles when it is done (or, for a storm, after stop()). */
export function startLoad(spec: LoadSpec): { warm: Promise<void>; result: Promise<LoadResult>; stop(): void } {
  const proc = forkChild(SELF);
  const warm = awaitMessage<void>(proc, 'warm');
  const result = awaitMessage<LoadResult>(proc, 'result');
  proc.send(spec);
  return { warm, result, stop: () => proc.send('stop') };
}

/** Runs a load to its end; with `pid`, also the CPU that process (and its workers) spent per response. */
export async function runLoad(spec: LoadSpec, pid?: number): Promise<LoadResult> {
  const before = pid === undefined ? 0 : cpuMs(pid);
  const result = await startLoad(spec).result;
  if (pid !== undefined && result.total > 0) result.cpuUs = Math.round(((cpuMs(pid) - before) * 1000) / result.total);
  return result;
}

if (import.meta.main) await loadRole();
