// The HTTP composition: Koa + koa-body in front, openapi-backend routing, validating and
// authenticating from openapi.yaml, one handler per operationId behind it, and one place where
// every error becomes RFC 9457 application/problem+json.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Koa from 'koa';
import { koaBody } from 'koa-body';
import { OpenAPIBackend, type Context, type Document } from 'openapi-backend';
import addFormats from 'ajv-formats';
import YAML from 'yaml';
import type { Problem as ProblemBody } from './generated/types.gen.ts';
import { isDatabaseUnavailable } from './db/errors.ts';
import { handlers } from './handlers/index.ts';
import { apiKeyHeader, bearerAuth, unauthorized } from './lib/auth.ts';
import { cors } from './lib/cors.ts';
import { docs } from './lib/docs.ts';
import type { Deps } from './lib/deps.ts';
import { consume, limitKey } from './lib/limits.ts';
import { createMetrics, type Metrics } from './lib/metrics.ts';
import { Problem, problem, serviceUnavailable } from './lib/problems.ts';

const ROOT = path.dirname(fileURLToPath(import.meta.url));
export const SPEC_PATH = path.join(ROOT, 'openapi.yaml');
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

/** The contract, read once: routed by openapi-backend and served as-is at /openapi.{yaml,json}. */
export function loadSpec(): { yaml: string; document: Document } {
  const yaml = fs.readFileSync(SPEC_PATH, 'utf8');
  return { yaml, document: YAML.parse(yaml) as Document };
}

export interface App {
  koa: Koa;
  api: OpenAPIBackend;
}

export async function createApp(deps: Deps, metrics: Metrics = createMetrics(deps)): Promise<App> {
  const { config, log } = deps;
  const spec = loadSpec();
  const specJson = JSON.stringify(spec.document);

  const validated = new Set<string>();
  const api = new OpenAPIBackend({
    definition: structuredClone(spec.document),
    strict: true,
    // quick: validators are compiled per operation on first use instead of all at start, and the
    // response validators (never used here: responses are checked by the tests, not in
    // production) are never compiled: ~50 MB less resident memory. Quick mode also skips the
    // document check, so it is run explicitly below: a broken contract still stops start-up.
    quick: true,
    // An operation without parameters or body (GET /v1/me/account, the hot path) has nothing to
    // validate but its query string, which must be empty: ajv runs only when there is something
    // for it to look at.
    validate: (c: Context, ctx: Koa.Context) => validated.has(c.operation.operationId!) || ctx.querystring !== '',
    customizeAjv: (ajv) => {
      addFormats.default(ajv, ['email', 'uuid', 'date-time']);
      return ajv;
    },
  });
  api.register({
    ...handlers,
    validationFail: (c: Context) => {
      const errors = (c.validation.errors ?? []).slice(0, 20).map((e) => {
        const at = e.instancePath.startsWith('/requestBody')
          ? e.instancePath.replace('/requestBody', '/body')
          : e.instancePath;
        // ajv's "must NOT have additional properties" does not say which one: the path does.
        if (e.keyword === 'additionalProperties')
          return { path: `${at}/${String(e.params.additionalProperty)}`, message: 'is not allowed here' };
        return { path: at || '/', message: e.message ?? 'is invalid' };
      });
      throw problem('validation_failed', { errors });
    },
    postRoutingHandler: (c: Context, ctx: Koa.Context) => {
      ctx.state.operationId = c.operation?.operationId;
    },
    unauthorizedHandler: async (_c: Context, ctx: Koa.Context) => {
      // Refused tokens and keys are counted per client IP (a missing one costs nothing to check),
      // so guessing credentials or hammering the key lookup ends in 429.
      if (ctx.state.credentialRefused === true && !ctx.state.authFailure) {
        await consume(deps.db, [{ key: limitKey('auth-fail-ip', ctx.ip), rule: config.limits.authFailureIp }]);
      }
      unauthorized(ctx);
    },
    notFound: () => {
      throw problem('not_found');
    },
    methodNotAllowed: (c: Context) => {
      const allow = METHODS.filter((method) => api.router.matchOperation({ method, path: c.request.path, headers: {} }))
        .map((m) => m.toUpperCase())
        .join(', ');
      throw problem('method_not_allowed', { headers: { Allow: allow } });
    },
    notImplemented: () => {
      throw problem('not_implemented');
    },
  });
  api.registerSecurityHandler('bearerAuth', bearerAuth);
  api.registerSecurityHandler('apiKeyHeader', apiKeyHeader);
  await api.init();
  await api.loadDocument();
  api.validateDefinition();
  // openapi-backend's router rebuilds its operation list (a lodash chain copying every operation)
  // on each call, and matchOperation calls it twice per request; the document is fixed once
  // init() has run, so build the list once (measured: ~36 → ~3 µs of routing per request).
  const operations = api.router.getOperations();
  api.router.getOperations = () => operations;
  for (const op of operations) if (op.requestBody || (op.parameters ?? []).length > 0) validated.add(op.operationId!);

  // maxIpsCount keeps only the X-Forwarded-For entries the trusted proxies appended (the last
  // `proxyHops`); ctx.ip is the first of those, whatever the client put in front.
  const koa = new Koa({ proxy: config.trustProxy, maxIpsCount: config.proxyHops });

  // The level is fixed at start; below it, not even the log line's object is built.
  const logDebug = log.isLevelEnabled('debug');
  const logInfo = log.isLevelEnabled('info');

  // Outermost: request id, access log, and the one problem+json renderer.
  koa.use(async (ctx, next) => {
    const started = performance.now();
    const sent = ctx.get('x-request-id');
    const requestId = REQUEST_ID.test(sent) ? sent : randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    if (logDebug) log.debug({ requestId, method: ctx.method, path: ctx.path }, 'request received');
    ctx.set('X-Content-Type-Options', 'nosniff');
    try {
      await next();
    } catch (err) {
      const refusal = toProblem(err);
      if (refusal.status >= 500 && !(err instanceof Problem)) {
        // Logged with the request id and cause; the client sees only the problem's code.
        log.error({ err, requestId, method: ctx.method, path: ctx.path }, 'request failed');
      }
      ctx.status = refusal.status;
      for (const [name, value] of Object.entries(refusal.extra.headers ?? {})) ctx.set(name, value);
      ctx.body = problemBody(refusal);
      // Koa resets the type to JSON for object bodies: set it after the body.
      ctx.type = 'application/problem+json';
    }
    const ms = performance.now() - started;
    if (logInfo)
      log.info(
        {
          requestId,
          method: ctx.method,
          path: ctx.path,
          operation: ctx.state.operationId,
          status: ctx.status,
          ms: Math.round(ms),
        },
        'request',
      );
    metrics.observe(ctx, ms / 1000);
  });

  // The layers below run only where they can do something: every Koa layer costs each request
  // a closure call and a promise, and the authenticated reads are the hot path.

  // GET /metrics for a scraper holding METRICS_TOKEN; without a token the path does not exist.
  if (config.metricsToken) koa.use(metrics.route);

  // Before the 415/413 checks, so a browser app on a listed origin can read those errors too.
  // With no origins listed nothing is mounted and no response carries a CORS header.
  if (config.corsOrigins.length > 0) koa.use(cors(config.corsOrigins));

  // JSON only. A body of any other type is 415 before anything tries to read it. koa-body reads
  // bodies of POST, PUT and PATCH only (its default), so it is not even asked about the others.
  const parseBody = koaBody({
    json: true,
    urlencoded: false,
    text: false,
    multipart: false,
    jsonStrict: true,
    jsonLimit: config.bodyLimitBytes,
    onError: (err: Error & { status?: number; type?: string }) => {
      if (err.status === 413)
        throw problem('payload_too_large', {
          detail: `Bodies are limited to ${config.bodyLimitBytes} bytes.`,
        });
      if (err.status === 415) throw problem('unsupported_media_type', { detail: 'Send UTF-8 JSON.' });
      throw problem('invalid_json');
    },
  });
  koa.use((ctx, next) => {
    const hasBody = Number(ctx.get('content-length') || 0) > 0 || ctx.get('transfer-encoding') !== '';
    if (hasBody && !ctx.is('application/json', '+json')) {
      throw problem('unsupported_media_type', {
        detail: 'Send the body as application/json.',
      });
    }
    return BODY_METHODS.has(ctx.method) ? parseBody(ctx, next) : next();
  });

  // The interactive docs and the contract itself, served as the document the server routes by.
  const docsPages = docs();
  koa.use((ctx, next) => {
    const p = ctx.path;
    if (p.startsWith('/docs')) return docsPages(ctx, next);
    if ((p === '/openapi.yaml' || p === '/openapi.json') && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
      ctx.type = p === '/openapi.yaml' ? 'application/yaml' : 'application/json';
      ctx.body = p === '/openapi.yaml' ? spec.yaml : specJson;
      return;
    }
    return next();
  });

  koa.use(async (ctx) => {
    const res = (await api.handleRequest(
      {
        method: ctx.method,
        path: ctx.path,
        query: ctx.querystring,
        headers: ctx.headers as Record<string, string>,
        body: ctx.request.body,
      },
      ctx,
      deps,
    )) as { status: number; body?: unknown; headers?: Record<string, string> };
    ctx.status = res.status;
    for (const [name, value] of Object.entries(res.headers ?? {})) ctx.set(name, value);
    if (res.body !== undefined) ctx.body = res.body;
  });

  return { koa, api };
}

/** The RFC 9457 body: the code's type URN, title and status, and what the throw site added. */
function problemBody(p: Problem): ProblemBody {
  const body: ProblemBody = {
    type: `urn:rst-auth:problem:${p.code}`,
    title: p.message,
    status: p.status,
    code: p.code,
  };
  if (p.extra.detail) body.detail = p.extra.detail;
  if (p.extra.errors) body.errors = p.extra.errors;
  return body;
}

/** Maps anything thrown to a Problem; internals never reach the client. */
function toProblem(err: unknown): Problem {
  if (err instanceof Problem) return err;
  if (isDatabaseUnavailable(err)) return serviceUnavailable();
  // A path with broken percent-encoding (`/v1/auth/api-keys/%ZZ`) fails decoding in the router.
  if (err instanceof URIError) {
    return problem('validation_failed', {
      errors: [{ path: '/path', message: 'has malformed percent-encoding' }],
    });
  }
  // 22021/22P05: a string the schema allows but PostgreSQL text cannot hold (U+0000 above all),
  // met in a query parameter. The input is at fault, not the service: 400, not 500.
  if (['22021', '22P05'].includes((err as { code?: string })?.code ?? '')) {
    return problem('validation_failed', {
      detail: 'A string contains a character that cannot be stored, such as U+0000.',
      errors: [{ path: '/body', message: 'must not contain U+0000' }],
    });
  }
  return problem('internal_error', {
    detail: 'Something went wrong on our side; it has been logged.',
  });
}
