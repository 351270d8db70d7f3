// GET /metrics. On the public port only when METRICS_TOKEN is set (and MANAGEMENT_PORT is not),
// for a scraper that sends it as a Bearer token; otherwise the path is an ordinary 404, so the
// endpoint is invisible to anyone else. On the management port it asks for the token when one is
// set, and for nothing when none is: that listener is kept off the internet by where it binds.
// Not part of openapi.yaml: it is for operators, not API clients. The numbers: lib/metrics.ts.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Metrics } from '../lib/metrics.ts';
import type { Middleware, RequestContext } from './state.ts';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Paths outside the contract, as bounded label values: a fuzzer's random paths never become series. */
export function operationLabel(ctx: RequestContext): string {
  if (typeof ctx.state.operationId === 'string') return ctx.state.operationId;
  if (ctx.path === '/openapi.yaml' || ctx.path === '/openapi.json') return 'openapi';
  if (ctx.path === '/docs' || ctx.path.startsWith('/docs/')) return 'docs';
  if (ctx.path === '/metrics') return 'metrics';
  return 'unmatched';
}

/** GET /metrics for a scraper holding `token` (or anyone, when undefined); anything else passes on (and ends as 404). */
export function metricsRoute(metrics: Metrics, token: string | undefined): Middleware {
  const wanted = token === undefined ? undefined : digest(token);
  const authorized = (ctx: RequestContext): boolean => {
    if (wanted === undefined) return true;
    const m = /^Bearer +(\S+) *$/i.exec(ctx.get('authorization'));
    // Both sides hashed to one length first, so the comparison time says nothing about the token.
    return !!m && timingSafeEqual(digest(m[1]!), wanted);
  };
  return async (ctx, next) => {
    if (ctx.path !== '/metrics' || ctx.method !== 'GET' || !authorized(ctx)) return next();
    const text = await metrics.scrape();
    ctx.set('Cache-Control', 'no-store');
    ctx.type = metrics.registry.contentType;
    ctx.body = text;
  };
}
