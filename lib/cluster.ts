// WEB_CONCURRENCY=N: the primary process prepares the database once (migrations), then forks N
// workers that listen on one port (node:cluster hands new connections out round-robin on Linux).
// It prints the "listening" line once, when every worker is ready; replaces a worker that dies
// after start-up; and on SIGTERM/SIGINT stops every worker gracefully and exits 0 when all did; a
// second signal passes on to the workers (each exits at once) and the primary exits too.
// With MANAGEMENT_PORT every worker listens on that port as well (node:cluster shares it): a
// probe reaches one worker, which answers for the database and its own state, and /metrics there
// sums every worker's numbers as on the public port.
// Workers share nothing in memory: limits, codes and the outbox live in PostgreSQL.
import cluster from 'node:cluster';
import type { Config } from '../config.ts';
import type { Logger } from './logger.ts';
import { serveClusterMetrics } from './metrics.ts';

const LISTENING = 'rst:listening';
/** Called in a worker once its server (and management listener) listens. */
export function reportListening(url: string, managementUrl: string | undefined): void {
  process.send?.({ type: LISTENING, url, managementUrl });
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
    worker.on('message', (message: { type?: string; url?: string; managementUrl?: string }) => {
      if (message?.type !== LISTENING) return;
      listening.add(worker.id);
      if (!ready && listening.size === config.webConcurrency) {
        ready = true;
        const { url, managementUrl } = message;
        log.info({ url, managementUrl, workers: config.webConcurrency, database: 'postgresql' }, 'listening');
        const management = managementUrl ? `; management: ${managementUrl}` : '';
        console.log(`rst auth listening on ${url} (docs: ${url}/docs${management})`);
      }
    });
  };

  const stopAll = (signal: string, code: number) => {
    if (stopping) {
      if (code === 0) {
        // A second signal from the operator: every worker gets its second one and exits at once.
        log.warn({ signal }, 'second signal: exiting now');
        for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
        process.exit(1);
      }
      return;
    }
    stopping = true;
    if (code !== 0) clean = false;
    log.info({ signal, workers: alive.size }, 'shutting down');
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    setTimeout(() => {
      log.error({ workers: alive.size }, 'workers did not stop in time');
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
      process.exit(1);
    }, config.shutdownTimeoutMs + 5000).unref();
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

  process.on('SIGTERM', () => stopAll('SIGTERM', 0));
  process.on('SIGINT', () => stopAll('SIGINT', 0));
  for (let i = 0; i < config.webConcurrency; i++) fork();
}
