// Prometheus metrics (prom-client), served at GET /metrics only when METRICS_TOKEN is set and the
// scraper sends it as a Bearer token; otherwise the path is an ordinary 404, so the endpoint is
// invisible to anyone else. Not part of openapi.yaml: it is for operators, not API clients.
//
// Under WEB_CONCURRENCY each worker keeps its own counters; a scrape (answered by whichever worker
// the kernel hands the connection to) asks the primary to gather every worker's registry over
// IPC, so one scrape sees the whole server.
import cluster from 'node:cluster';
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type Koa from 'koa';
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Config } from '../config.ts';
import type { Db } from '../db/knex.ts';
import type { Logger } from './logger.ts';

export interface Metrics {
  registry: Registry;
  /** Records one finished request; called by the outermost middleware after the status is final. */
  observe(ctx: Koa.Context, seconds: number): void;
  /** GET /metrics for a scraper holding METRICS_TOKEN; anything else passes on (and ends as 404). */
  route: Koa.Middleware;
  /** Counts one failed email delivery attempt (the delivery worker calls it). */
  mailDeliveryFailed(): void;
}

const REQUEST = 'rst:metrics:request';
const REPLY = 'rst:metrics:reply';

/** Paths outside the contract, as bounded label values: a fuzzer's random paths never become series. */
function operationLabel(ctx: Koa.Context): string {
  if (typeof ctx.state.operationId === 'string') return ctx.state.operationId;
  if (ctx.path === '/openapi.yaml' || ctx.path === '/openapi.json') return 'openapi';
  if (ctx.path === '/docs' || ctx.path.startsWith('/docs/')) return 'docs';
  if (ctx.path === '/metrics') return 'metrics';
  return 'unmatched';
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export function createMetrics(deps: { config: Readonly<Config>; db: Db; log: Logger }): Metrics {
  const { config, db, log } = deps;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const requests = new Counter({
    name: 'rst_http_requests_total',
    help: 'HTTP requests by operation (operationId, or openapi/docs/metrics/unmatched) and status',
    labelNames: ['operation', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'rst_http_request_duration_seconds',
    help: 'Time from the request arriving to its response being ready, by operation',
    labelNames: ['operation'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const loginFailures = new Counter({
    name: 'rst_login_failures_total',
    help: 'Sign-ins refused for a wrong identifier or password (401 invalid_credentials)',
    registers: [registry],
  });
  const authFailures = new Counter({
    name: 'rst_auth_failures_total',
    help: 'Requests whose JWT or API key was refused (401 unauthorized)',
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: 'rst_rate_limited_total',
    help: 'Requests refused by a rate limit (429), by operation',
    labelNames: ['operation'] as const,
    registers: [registry],
  });

  const deliveryFailures = new Counter({
    name: 'rst_mail_delivery_failures_total',
    help: 'Email delivery attempts that failed and were scheduled for a retry',
    registers: [registry],
  });

  // The outbox lives in the database, so every instance reports the same numbers: read once per
  // scrape, shared by the three gauges, and taken from one worker when a cluster aggregates.
  let sample: Promise<{ pending: number; retrying: number; oldest: number }> | undefined;
  const readOutbox = () =>
    (sample ??= (async () => {
      try {
        const row = await db('outbox')
          .whereNull('sent_at')
          .first(
            db.raw('count(*) as pending'),
            db.raw('count(last_error) as retrying'),
            db.raw('coalesce(extract(epoch from now() - min(created_at)), 0) as oldest'),
          );
        return {
          pending: Number(row?.pending ?? 0),
          retrying: Number(row?.retrying ?? 0),
          oldest: Number(row?.oldest ?? 0),
        };
      } finally {
        setTimeout(() => (sample = undefined), 1000).unref();
      }
    })());
  const outboxGauge = (name: string, help: string, pick: (s: Awaited<ReturnType<typeof readOutbox>>) => number) =>
    new Gauge({
      name,
      help,
      aggregator: 'first',
      registers: [registry],
      async collect() {
        try {
          this.set(pick(await readOutbox()));
        } catch (err) {
          // The database is down: the scrape still answers, with the last value seen.
          log.warn({ err }, 'metrics: outbox not readable');
        }
      },
    });
  outboxGauge('rst_outbox_pending', 'Emails queued and not yet delivered', (s) => s.pending);
  outboxGauge(
    'rst_outbox_retrying',
    'Queued emails whose last delivery attempt failed (SMTP down or refusing)',
    (s) => s.retrying,
  );
  outboxGauge('rst_outbox_oldest_pending_seconds', 'Age of the oldest undelivered email', (s) => s.oldest);

  if (cluster.isWorker) {
    // Answers the primary's aggregation requests with this worker's registry.
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([registry]);
  }

  // prom-client hashes a label object on every inc() and observe(); the series of each
  // operation and status are looked up once instead. Both are closed sets, so this stays small.
  const seriesByKey = new Map<
    string,
    { count: ReturnType<typeof requests.labels>; time: ReturnType<typeof duration.labels> }
  >();

  const wanted = config.metricsToken ? digest(config.metricsToken) : undefined;
  const authorized = (ctx: Koa.Context): boolean => {
    if (!wanted) return false;
    const m = /^Bearer +(\S+) *$/i.exec(ctx.get('authorization'));
    // Both sides hashed to one length first, so the comparison time says nothing about the token.
    return !!m && timingSafeEqual(digest(m[1]!), wanted);
  };

  return {
    registry,
    mailDeliveryFailed: () => deliveryFailures.inc(),
    observe(ctx, seconds) {
      const operation = operationLabel(ctx);
      const key = `${operation} ${ctx.status}`;
      let series = seriesByKey.get(key);
      if (!series) {
        series = { count: requests.labels(operation, String(ctx.status)), time: duration.labels(operation) };
        seriesByKey.set(key, series);
      }
      series.count.inc();
      series.time.observe(seconds);
      if (ctx.status === 429) rateLimited.inc({ operation });
      if (ctx.status === 401 && operation === 'login') loginFailures.inc();
      if (ctx.status === 401 && ctx.state.credentialRefused === true) authFailures.inc();
    },
    route: async (ctx, next) => {
      if (ctx.path !== '/metrics' || ctx.method !== 'GET' || !authorized(ctx)) return next();
      const text = cluster.isWorker ? await clusterMetrics() : await registry.metrics();
      ctx.set('Cache-Control', 'no-store');
      ctx.type = registry.contentType;
      ctx.body = text;
    },
  };
}

/** In a worker: asks the primary for every worker's metrics, aggregated. */
function clusterMetrics(): Promise<string> {
  return new Promise((resolve, reject) => {
    const id = randomUUID();
    const onMessage = (message: { type?: string; id?: string; text?: string; error?: string }) => {
      if (message?.type !== REPLY || message.id !== id) return;
      done();
      if (message.error !== undefined) reject(new Error(`metrics aggregation failed: ${message.error}`));
      else resolve(message.text ?? '');
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error('metrics aggregation timed out'));
    }, 8000);
    const done = () => {
      clearTimeout(timer);
      process.off('message', onMessage);
    };
    process.on('message', onMessage);
    process.send!({ type: REQUEST, id });
  });
}

/** In the primary of a cluster: gathers the workers' registries for whichever worker asks. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: { type?: string; id?: string }) => {
    if (message?.type !== REQUEST) return;
    aggregator.clusterMetrics().then(
      (text) => worker.send({ type: REPLY, id: message.id, text }),
      (err: Error) => worker.send({ type: REPLY, id: message.id, error: err.message }),
    );
  });
}
