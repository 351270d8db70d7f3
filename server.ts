// The composition root: config → database (migrated) → dependencies → HTTP server, and a
// graceful stop on SIGTERM/SIGINT. `npm start` runs this file.
import cluster from 'node:cluster';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from './http/app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { migrate, openDatabase, type Db } from './db/knex.ts';
import { deleteExpiredCounters } from './db/rateLimits.ts';
import { deleteEndedSessions } from './db/sessions.ts';
import { reportListening, runPrimary } from './lib/cluster.ts';
import { createDeps } from './lib/deps.ts';
import { createLogger, type Logger } from './lib/logger.ts';
import { startOutboxWorker } from './lib/outboxWorker.ts';
import { createMetrics } from './lib/metrics.ts';
import { lowerPoolThreadPriority } from './lib/passwords.ts';

export interface Running {
  url: string;
  server: http.Server;
  db: Db;
  log: Logger;
  stop(): Promise<void>;
}

export async function start(
  config: Readonly<Config>,
  log: Logger = createLogger(config.logLevel),
  opts: { migrate?: boolean } = {},
): Promise<Running> {
  const lowered = await lowerPoolThreadPriority(config.poolThreadNice);
  log.debug({ threads: lowered, nice: config.poolThreadNice }, 'pool threads lowered');
  const db = openDatabase(config);
  // A cluster's workers skip this: their primary migrated once before forking them.
  if (opts.migrate !== false) await migrate(db);
  const deps = await createDeps(config, db, log);
  const metrics = createMetrics(deps);
  const outboxWorker = startOutboxWorker(deps, metrics.mailDeliveryFailed);
  deps.wakeOutboxWorker = outboxWorker.wake;
  const { koa } = await createApp(deps, metrics);

  const server = http.createServer(koa.callback());
  // Slow-client bounds: a request must arrive whole within 30 s; idle keep-alive sockets close.
  server.requestTimeout = 30_000;
  server.headersTimeout = 20_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;

  const sweeper = setInterval(() => {
    deleteExpiredCounters(db, 2 * 86400).catch((err) => log.warn({ err }, 'rate-limit sweep failed'));
    // Nothing accepts an ended or expired session (or its refresh tokens) any more: forget it.
    deleteEndedSessions(db, 86400).catch((err) => log.warn({ err }, 'session sweep failed'));
  }, 3600_000);
  sweeper.unref();

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      clearInterval(sweeper);
      // Stop accepting, let in-flight requests finish, drop idle keep-alive sockets.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), 8000);
      await closed;
      clearTimeout(force);
      await outboxWorker.stop();
      await deps.keyUses.stop();
      await deps.sessionUses.stop();
      await db.destroy();
    })());

  return { url, server, db, log, stop };
}

async function main(): Promise<void> {
  let config: Readonly<Config>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const problem of err.problems) console.error(`rst auth: configuration error: ${problem}`);
      process.exit(2);
    }
    throw err;
  }
  // Password hashing holds libuv pool threads for its whole run; keep threads to spare so file
  // and DNS work never wait behind a login storm. Set before anything first uses the pool.
  process.env.UV_THREADPOOL_SIZE ??= String(config.kdfConcurrency + 4);
  const log = createLogger(config.logLevel);
  if (config.webConcurrency > 1 && cluster.isPrimary) {
    await runPrimary(config, log, async () => {
      const db = openDatabase(config);
      try {
        await migrate(db);
      } finally {
        await db.destroy();
      }
    });
    return;
  }
  const running = await start(config, log, { migrate: !cluster.isWorker });
  if (cluster.isWorker) {
    // The primary prints the URL once every worker is up; each worker says which pid it is.
    log.info({ url: running.url, worker: cluster.worker?.id }, 'worker listening');
    reportListening(running.url);
  } else {
    log.info(
      { url: running.url, database: config.databaseUrl ? 'postgresql' : `pglite:${config.dataDir}` },
      'listening',
    );
    console.log(`rst auth listening on ${running.url} (docs: ${running.url}/docs)`);
  }

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    running.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  // A worker whose primary is gone (killed outright) must not keep the port: stop too.
  if (cluster.isWorker) process.once('disconnect', () => shutdown('disconnect'));
}

if (import.meta.main) {
  main().catch((err) => {
    console.error('rst auth: failed to start:', err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
