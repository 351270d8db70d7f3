// The KDF bound: how many logins per second the machine could verify at the service's scrypt cost
// and concurrency, measured in a child process of its own. measureKdf (the parent's side) forks
// this file and sends it one KdfSpec.
import { fileURLToPath } from 'node:url';
import * as scryptModule from 'scrypt-kdf';
import { awaitMessage, forkChild, receiveSpec } from './ipc.ts';

export interface KdfSpec {
  params: { logN: number; r: number; p: number };
  concurrency: number;
  warmup: number;
  duration: number;
}

export interface KdfResult {
  rate: number;
  perThread: number[];
}

async function kdfRole(): Promise<void> {
  // scrypt-kdf 4 ships one default export at run time while its .d.ts declares named exports.
  const Scrypt = (scryptModule as unknown as { default: typeof scryptModule }).default;
  const spec = await receiveSpec<KdfSpec>();
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
  const result: KdfResult = { rate: rates.reduce((a, b) => a + b, 0), perThread: rates };
  process.send!({ type: 'result', result }, () => process.exit(0));
}

export function measureKdf(spec: KdfSpec): Promise<KdfResult> {
  // The same pool headroom server.ts gives itself, so the bound is not capped by the pool.
  const proc = forkChild(fileURLToPath(import.meta.url), {
    ...process.env,
    UV_THREADPOOL_SIZE: String(spec.concurrency + 4),
  });
  const result = awaitMessage<KdfResult>(proc, 'result');
  proc.send(spec);
  return result;
}

if (import.meta.main) await kdfRole();
