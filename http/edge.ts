// The outermost layer: the request id, the headers every response carries, the access log, the
// request metrics, and every throw from the layers below rendered as problem+json.
import { randomUUID } from 'node:crypto';
import { fromClient, type Logger } from '../lib/logger.ts';
import type { Metrics } from '../lib/metrics.ts';
import { Problem } from '../lib/problems.ts';
import { operationLabel } from './metrics.ts';
import { renderProblem, toProblem } from './problems.ts';
import type { Middleware } from './state.ts';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function edge(log: Logger, metrics: Metrics): Middleware {
  // The level is fixed at start; below it, not even the log line's object is built.
  const logDebug = log.isLevelEnabled('debug');
  const logInfo = log.isLevelEnabled('info');

  return async (ctx, next) => {
    const started = performance.now();
    const sent = ctx.get('x-request-id');
    const requestId = REQUEST_ID.test(sent) ? sent : randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    if (logDebug) log.debug({ requestId, method: ctx.method, path: fromClient(ctx.path) }, 'request received');
    ctx.set('X-Content-Type-Options', 'nosniff');
    try {
      await next();
    } catch (err) {
      const refusal = toProblem(err);
      if (refusal.status >= 500 && !(err instanceof Problem)) {
        // Logged with the request id and cause; the client sees only the problem's code.
        log.error({ err, requestId, method: ctx.method, path: fromClient(ctx.path) }, 'request failed');
      }
      renderProblem(ctx, refusal);
    }
    const ms = performance.now() - started;
    if (logInfo)
      log.info(
        {
          requestId,
          method: ctx.method,
          path: fromClient(ctx.path),
          operation: ctx.state.operationId,
          status: ctx.status,
          ms: Math.round(ms),
        },
        'request',
      );
    metrics.observe(operationLabel(ctx), ctx.status, ms / 1000, ctx.state.credential?.outcome === 'refused');
  };
}
