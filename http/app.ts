// The HTTP composition: the order of the Koa layers, and nothing else. Each layer is a file of
// http/ named for what it does.
import Koa from 'koa';
import type { OpenAPIBackend } from 'openapi-backend';
import type { Deps } from '../lib/deps.ts';
import { createMetrics, type Metrics } from '../lib/metrics.ts';
import { jsonBodyOnly } from './body.ts';
import { cors } from './cors.ts';
import { problem } from '../lib/problems.ts';
import { edge } from './edge.ts';
import { metricsRoute } from './metrics.ts';
import { createOpenApi, operations } from './openapi.ts';
import { loadSpec, published } from './published.ts';
import type { RequestState } from './state.ts';

export interface App {
  koa: Koa<RequestState>;
  api: OpenAPIBackend;
}

export async function createApp(deps: Deps, metrics: Metrics = createMetrics(deps)): Promise<App> {
  const { config, log } = deps;
  const spec = loadSpec();
  const api = await createOpenApi(spec.document, deps);

  // maxIpsCount keeps only the X-Forwarded-For entries the trusted proxies appended (the last
  // `proxyHops`); ctx.ip is the first of those, whatever the client put in front.
  const koa = new Koa<RequestState>({ proxy: config.trustProxy, maxIpsCount: config.proxyHops });

  // Outermost: request id, access log, and the one problem+json renderer.
  koa.use(edge(log, metrics));

  // The layers below run only where they can do something: every Koa layer costs each request
  // a closure call and a promise, and the authenticated reads are the hot path.

  // GET /metrics for a scraper holding METRICS_TOKEN; without a token the path does not exist,
  // and with a management port it lives there instead.
  if (config.metricsToken && config.managementPort === undefined) koa.use(metricsRoute(metrics, config.metricsToken));

  // Before the 415/413 checks, so a browser app on a listed origin can read those errors too.
  // With no origins listed nothing is mounted and no response carries a CORS header.
  if (config.corsOrigins.length > 0) koa.use(cors(config.corsOrigins));

  koa.use(jsonBodyOnly(config.bodyLimitBytes));
  koa.use(published(spec, config.appName));
  koa.use(operations(api, deps));

  return { koa, api };
}

const MANAGEMENT_PATHS = new Set(['/healthz', '/readyz']);

/**
 * The management listener (MANAGEMENT_PORT): /healthz, /readyz and /metrics and nothing else,
 * through the same edge (request ids, access log, problem+json) and the same openapi-backend, so
 * the probes answer exactly as on the public port.
 */
export function createManagementApp(deps: Deps, metrics: Metrics, api: OpenAPIBackend): Koa<RequestState> {
  const koa = new Koa<RequestState>();
  koa.use(edge(deps.log, metrics));
  koa.use(metricsRoute(metrics, deps.config.metricsToken));
  koa.use(async (ctx, next) => {
    if (!MANAGEMENT_PATHS.has(ctx.path)) throw problem('not_found');
    await next();
  });
  koa.use(operations(api, deps));
  return koa;
}
