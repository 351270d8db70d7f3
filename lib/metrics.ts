// Prometheus metrics (prom-client): request counts and durations by operation, refusals, rate
// limits, mail delivery failures and the outbox backlog. http/metrics.ts serves them at GET
// /metrics to a scraper holding METRICS_TOKEN; they are for operators, not API clients.
//
// Under WEB_CONCURRENCY each worker keeps its own counters; a scrape (answered by whichever worker
// the kernel hands the connection to) asks the primary to gather every worker's registry over
// IPC, so one scrape sees the whole server.
import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Db } from '../db/knex.ts';
import { readOutboxBacklog, type OutboxBacklog } from '../db/outbox.ts';
import type { CacheStats } from './credentialCache.ts';
import type { Logger } from './logger.ts';
import type { DeliveryEvents } from './outboxWorker.ts';

export interface Metrics {
  registry: Registry;
  /** Records one finished request (`operation` a bounded label); called once its status is final. */
  observe(operation: string, status: number, seconds: number, credentialRefused: boolean): void;
  /** What a scrape reads: this process's registry, or in a cluster worker every worker's. */
  scrape(): Promise<string>;
  /** What the delivery worker reports: failed attempts, and messages given up by reason. */
  mail: DeliveryEvents;
}

const REQUEST = 'rst:metrics:request';
const REPLY = 'rst:metrics:reply';

export function createMetrics(deps: { db: Db; log: Logger; credentialCache: { snapshot(): CacheStats } }): Metrics {
  const { db, log, credentialCache } = deps;
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
  const givenUp = new Counter({
    name: 'rst_mail_given_up_total',
    help: 'Emails (and jobs) given up unsent, their secret erased, by reason: rejected (SMTP 5xx), attempts (OUTBOX_MAX_ATTEMPTS reached), expired (the code or link expired first)',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  for (const reason of ['rejected', 'attempts', 'expired'] as const) givenUp.labels(reason); // 0 before the first

  // The outbox lives in the database, so every instance reports the same numbers: read once per
  // scrape, shared by the three gauges, and taken from one worker when a cluster aggregates.
  let sample: Promise<OutboxBacklog> | undefined;
  const readOutbox = () =>
    (sample ??= readOutboxBacklog(db).finally(() => {
      setTimeout(() => (sample = undefined), 1000).unref();
    }));
  const outboxGauge = (name: string, help: string, pick: (s: OutboxBacklog) => number) =>
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

  // The credential cache counts in plain numbers on the hot path; a scrape copies them. Each
  // worker has a cache of its own: counters add up, and "listening" is the least of them (0 as
  // soon as one worker is bypassing its cache).
  const cacheSeries = (
    name: string,
    help: string,
    pick: (s: CacheStats) => number,
    type: 'counter' | 'gauge',
  ): void => {
    const collect = function (this: Gauge | Counter) {
      this.reset();
      this.inc(pick(credentialCache.snapshot()));
    };
    if (type === 'counter') new Counter({ name, help, registers: [registry], collect });
    else
      new Gauge({
        name,
        help,
        registers: [registry],
        aggregator: name.endsWith('_listener_up') ? 'min' : 'sum',
        collect,
      });
  };
  cacheSeries(
    'rst_credential_cache_hits_total',
    'Authenticated reads answered from the credential cache',
    (s) => s.hits,
    'counter',
  );
  cacheSeries(
    'rst_credential_cache_misses_total',
    'Authenticated reads that asked the database, with the cache on: not cached, or the cache bypassed (CREDENTIAL_CACHE=off counts none)',
    (s) => s.misses,
    'counter',
  );
  cacheSeries(
    'rst_credential_cache_evictions_total',
    'Cache entries dropped: a change heard from the database, a flush, age, or room for newer ones',
    (s) => s.evictions,
    'counter',
  );
  cacheSeries('rst_credential_cache_entries', 'Credentials held in the cache now', (s) => s.entries, 'gauge');
  cacheSeries(
    'rst_credential_cache_listener_up',
    '1 while the cache hears every change (LISTEN up, heartbeat on time); 0: bypassed, reads ask the database',
    (s) => (s.listening ? 1 : 0),
    'gauge',
  );

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

  return {
    registry,
    mail: { deliveryFailed: () => deliveryFailures.inc(), givenUp: (reason) => givenUp.inc({ reason }) },
    observe(operation, status, seconds, credentialRefused) {
      const key = `${operation} ${status}`;
      let series = seriesByKey.get(key);
      if (!series) {
        series = { count: requests.labels(operation, String(status)), time: duration.labels(operation) };
        seriesByKey.set(key, series);
      }
      series.count.inc();
      series.time.observe(seconds);
      if (status === 429) rateLimited.inc({ operation });
      if (status === 401 && operation === 'login') loginFailures.inc();
      if (status === 401 && credentialRefused) authFailures.inc();
    },
    scrape: () => (cluster.isWorker ? clusterMetrics() : registry.metrics()),
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
