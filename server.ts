// The composition root: config → database (migrated) → dependencies → HTTP server (and the
// management listener), and a graceful stop on SIGTERM/SIGINT. `npm start` runs this file.
import cluster from 'node:cluster';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, createManagementApp } from './http/app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { openDatabase, openMigrationDatabase, readStatementTimeout, type Db } from './db/knex.ts';
import { migrate, migrationStatus } from './db/migrate.ts';
import { reportListening, runPrimary } from './lib/cluster.ts';
import { embeddedChannel, postgresChannel } from './db/credentialEvents.ts';
import { createDeps } from './lib/deps.ts';
import { startHousekeeping } from './lib/housekeeping.ts';
import { createLogger, type Logger } from './lib/logger.ts';
import { loadMailTemplates } from './lib/mail.ts';
import { startOutboxWorker } from './lib/outboxWorker.ts';
import { createMetrics } from './lib/metrics.ts';
import { lowerPoolThreadPriority } from './lib/passwords.ts';

export interface Running {
  url: string;
  /** The management listener's URL, when MANAGEMENT_PORT is set. */
  managementUrl: string | undefined;
  server: http.Server;
  db: Db;
  log: Logger;
  stop(): Promise<void>;
}

/** Applies pending migrations over DATABASE_MIGRATION_URL (a direct connection) when set. */
async function applyMigrations(config: Readonly<Config>, log: Logger, db?: Db): Promise<void> {
  // The embedded database is one process: migrations run on the handle that serves.
  const target = config.databaseUrl || !db ? openMigrationDatabase(config) : db;
  try {
    const applied = await migrate(target);
    if (applied.length > 0) log.info({ applied }, 'migrations applied');
  } finally {
    if (target !== db) await target.destroy();
  }
}

const urlOf = (server: http.Server, host: string) => {
  const { port } = server.address() as AddressInfo;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
};

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

export async function start(
  config: Readonly<Config>,
  log: Logger = createLogger(config.logLevel),
  opts: { migrate?: boolean } = {},
): Promise<Running> {
  const lowered = await lowerPoolThreadPriority(config.poolThreadNice);
  log.debug({ threads: lowered, nice: config.poolThreadNice }, 'pool threads lowered');
  const db = openDatabase({ ...config, preparedStatements: config.databasePreparedStatements });
  // A cluster's workers skip this: their primary migrated once before forking them.
  const migrating = opts.migrate ?? config.migrateOnStart;
  if (migrating) await applyMigrations(config, log, db);
  const pending = migrating ? [] : (await migrationStatus(db)).pending;
  if (pending.length > 0 && config.jwtSecret === undefined)
    throw new Error(
      `${pending.length} migration(s) pending and JWT_SECRET unset (its generated value lives in the database): run \`npm run migrate\` first`,
    );
  if (config.databaseUrl && (await readStatementTimeout(db)) === 0)
    log.warn(
      'statement_timeout is 0 for this role: a statement outside a transaction is bounded only by the client (query_timeout); set ALTER ROLE … SET statement_timeout (README: Behind a pooler)',
    );

  const deps = await createDeps(config, db, log);
  // Its own direct connection on PostgreSQL (a pooler in transaction mode cannot carry LISTEN).
  // Start-up waits for the first attempt only: a listener that cannot come up leaves the cache
  // bypassed, and keeps trying.
  await deps.credentialCache.listen(
    config.databaseUrl ? postgresChannel(config.databaseListenUrl ?? config.databaseUrl) : embeddedChannel(db),
    log,
  );
  const metrics = createMetrics(deps);
  const outboxWorker = startOutboxWorker(deps, metrics.mail);
  deps.wakeOutboxWorker = outboxWorker.wake;
  const { koa, api } = await createApp(deps, metrics);

  // Not ready until the schema is there: another instance or `npm run migrate` applies it.
  let pendingPoll: NodeJS.Timeout | undefined;
  if (pending.length > 0) {
    deps.readiness.migrationsPending = true;
    log.warn({ pending }, 'migrations pending: not ready until they are applied (npm run migrate)');
    pendingPoll = setInterval(() => {
      migrationStatus(db).then(
        (status) => {
          if (status.pending.length > 0) return;
          deps.readiness.migrationsPending = false;
          clearInterval(pendingPoll);
          log.info('migrations applied: ready');
        },
        (err) => log.warn({ err }, 'migration status not readable'),
      );
    }, 2000);
    pendingPoll.unref();
  }

  const server = http.createServer(koa.callback());
  // Slow-client bounds: a request must arrive whole within 30 s; idle keep-alive sockets close.
  server.requestTimeout = 30_000;
  server.headersTimeout = 20_000;
  server.keepAliveTimeout = 5_000;
  await listen(server, config.port, config.host);
  const url = urlOf(server, config.host);

  let management: http.Server | undefined;
  if (config.managementPort !== undefined) {
    management = http.createServer(createManagementApp(deps, metrics, api).callback());
    management.keepAliveTimeout = 5_000;
    await listen(management, config.managementPort, config.managementHost);
  }
  const managementUrl = management && urlOf(management, config.managementHost);

  const housekeeping = startHousekeeping(db, config, log);

  // In-flight requests get the shutdown bound less 2 s; the rest is for the batched writes and the
  // pool. main() exits regardless once the whole bound has passed.
  const drainMs = Math.max(1000, config.shutdownTimeoutMs - 2000);
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      // /readyz says 503 from now on (on the management port, which stays up while draining).
      deps.readiness.shuttingDown = true;
      clearInterval(pendingPoll);
      // Stop accepting, let in-flight requests finish, drop idle keep-alive sockets.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), drainMs);
      // The delivery worker takes no new message and finishes the one it is sending.
      const delivered = outboxWorker.stop(drainMs);
      await closed;
      clearTimeout(force);
      await delivered;
      await housekeeping.stop();
      // API key uses marked by the last requests are written before the pool closes.
      await deps.keyUses.stop();
      await deps.sessionUses.stop();
      await deps.credentialCache.stop();
      if (management) {
        const managementClosed = new Promise<void>((resolve) => management.close(() => resolve()));
        management.closeAllConnections();
        await managementClosed;
      }
      await db.destroy();
    })());

  return { url, managementUrl, server, db, log, stop };
}

async function main(): Promise<void> {
  let config: Readonly<Config>;
  try {
    config = loadConfig();
    // Checked before anything starts: a broken template stops start-up, not a delivery later.
    loadMailTemplates(config);
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
      if (config.migrateOnStart) await applyMigrations(config, log);
    });
    return;
  }
  if (cluster.isWorker) {
    // Ctrl-C reaches every process of the group; the primary relays it to the workers as one
    // SIGTERM, which must not count as a second signal here.
    process.on('SIGINT', () => {});
  }
  const running = await start(config, log, cluster.isWorker ? { migrate: false } : {});
  const management = running.managementUrl ? `; management: ${running.managementUrl}` : '';
  if (cluster.isWorker) {
    // The primary prints the URL once every worker is up; each worker says which pid it is.
    log.info(
      { url: running.url, managementUrl: running.managementUrl, worker: cluster.worker?.id },
      'worker listening',
    );
    reportListening(running.url, running.managementUrl);
  } else {
    log.info(
      {
        url: running.url,
        managementUrl: running.managementUrl,
        database: config.databaseUrl ? 'postgresql' : `pglite:${config.dataDir}`,
      },
      'listening',
    );
    console.log(`rst auth listening on ${running.url} (docs: ${running.url}/docs${management})`);
  }

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      // A second signal: the operator does not want to wait for the drain.
      if (signal !== 'disconnect') {
        log.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      return;
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    setTimeout(() => {
      log.error('shutdown took longer than SHUTDOWN_TIMEOUT_SECONDS: exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs).unref();
    running.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  if (!cluster.isWorker) process.on('SIGINT', () => shutdown('SIGINT'));
  // A worker whose primary is gone (killed outright) must not keep the port: stop too.
  if (cluster.isWorker) process.once('disconnect', () => shutdown('disconnect'));
}

if (import.meta.main) {
  main().catch((err) => {
    console.error('rst auth: failed to start:', err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
