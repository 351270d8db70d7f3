// WEB_CONCURRENCY=N: the primary process prepares the database once (migrations), then forks N
// workers that listen on one port (node:cluster hands new connections out round-robin on Linux).
// It prints the "listening" line once, when every worker is ready; replaces a worker that dies
// after start-up; and on SIGTERM/SIGINT stops every worker gracefully and exits 0 when all did.
// Workers share nothing in memory: limits, codes and the outbox live in PostgreSQL.
import cluster from 'node:cluster';
import type { Config } from '../config.ts';
import type { Logger } from './logger.ts';
import { serveClusterMetrics } from './metrics.ts';

const LISTENING = 'rst:listening';
/** Workers stop within 8 s (server.ts forces open sockets closed then); this is the backstop. */
const STOP_DEADLINE_MS = 15_000;

/** Called in a worker once its server listens. */
export function reportListening(url: string): void {
  process.send?.({ type: LISTENING, url });
}

export async function runPrimary(config: Readonly<Config>, log: Logger, prepare: () => Promise<void>): Promise<void> {
  await prepare();
  serveClusterMetrics();

  const alive = new Set<number>();
  const listening = new Set<number>();
  let ready = false;
  let stopping = false;
  let clean = true;
  let restarts = 0;

  const fork = () => {
    const worker = cluster.fork();
    alive.add(worker.id);
    worker.on('message', (message: { type?: string; url?: string }) => {
      if (message?.type !== LISTENING) return;
      listening.add(worker.id);
      if (!ready && listening.size === config.webConcurrency) {
        ready = true;
        log.info({ url: message.url, workers: config.webConcurrency, database: 'postgresql' }, 'listening');
        console.log(`rst auth listening on ${message.url} (docs: ${message.url}/docs)`);
      }
    });
  };

  const stopAll = (signal: string, code: number) => {
    if (stopping) return;
    stopping = true;
    if (code !== 0) clean = false;
    log.info({ signal, workers: alive.size }, 'shutting down');
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    setTimeout(() => {
      log.error({ workers: alive.size }, 'workers did not stop in time');
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
      process.exit(1);
    }, STOP_DEADLINE_MS).unref();
    if (alive.size === 0) process.exit(clean ? 0 : 1);
  };

  cluster.on('exit', (worker, code, signal) => {
    alive.delete(worker.id);
    listening.delete(worker.id);
    if (stopping) {
      if (code !== 0) clean = false;
      if (alive.size === 0) process.exit(clean ? 0 : 1);
      return;
    }
    if (!ready) {
      // A worker that cannot start (port taken, database refused) would fail again: give up.
      log.error({ workerPid: worker.process.pid, code, signal }, 'a worker failed to start');
      stopAll('startup-failure', 1);
      return;
    }
    restarts++;
    const delay = Math.min(30_000, 500 * 2 ** Math.min(restarts, 6));
    log.error({ workerPid: worker.process.pid, code, signal, restartIn: delay }, 'worker died; starting another');
    setTimeout(() => {
      if (!stopping) fork();
    }, delay);
  });

  process.once('SIGTERM', () => stopAll('SIGTERM', 0));
  process.once('SIGINT', () => stopAll('SIGINT', 0));
  for (let i = 0; i < config.webConcurrency; i++) fork();
}
