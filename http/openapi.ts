// openapi-backend in strict mode, routing, validating and authenticating from openapi.yaml: every
// hook registered, so a request that fails routing, validation or authentication never reaches a
// handler, and the last Koa layer that hands each request to it.
import { type Context, type Document, OpenAPIBackend, type Operation, type Request } from 'openapi-backend';
import { handlers } from '../handlers/index.ts';
import type { Deps } from '../lib/deps.ts';
import { problem } from '../lib/problems.ts';
import { addContractFormats } from './formats.ts';
import { apiKeyHeader, bearerAuth, serviceKey, unauthorized } from './security.ts';
import type { Middleware, RequestContext } from './state.ts';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options'];

export async function createOpenApi(document: Document, deps: Deps): Promise<OpenAPIBackend> {
  const validated = new Set<string>();
  const api = new OpenAPIBackend({
    definition: structuredClone(document),
    strict: true,
    // quick: validators are compiled per operation on first use instead of all at start, and the
    // response validators (never used here: responses are checked by the tests, not in
    // production) are never compiled: ~50 MB less resident memory. Quick mode also skips the
    // document check, so it is run explicitly below: a broken contract still stops start-up.
    quick: true,
    // An operation without parameters or body (GET /v1/me/account, the hot path) has nothing to
    // validate but its query string, which must be empty: ajv runs only when there is something
    // for it to look at.
    validate: (c: Context, ctx: RequestContext) => validated.has(c.operation.operationId!) || ctx.querystring !== '',
    customizeAjv: addContractFormats,
  });
  api.register({
    ...settling(document, deps),
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
    postRoutingHandler: (c: Context, ctx: RequestContext) => {
      ctx.state.operationId = c.operation?.operationId;
      // Whatever an authenticated operation answers (its data, or a 401/403/404 about an account)
      // is about one caller: no shared or browser cache may keep it (RFC 9111 §5.2.2.5). Set
      // before security and validation run, so their refusals carry it too.
      if (c.operation?.security?.length) ctx.set('Cache-Control', 'no-store');
    },
    unauthorizedHandler: (_c: Context, ctx: RequestContext) => unauthorized(ctx, deps),
    notFound: () => {
      throw problem('not_found');
    },
    methodNotAllowed: (c: Context) => {
      const allowed = METHODS.filter((method) =>
        api.router.matchOperation({ method, path: c.request.path, headers: {} }),
      );
      // HEAD is answered wherever GET is (see operations()).
      if (allowed.includes('get')) allowed.splice(1, 0, 'head');
      const allow = allowed.map((m) => m.toUpperCase()).join(', ');
      throw problem('method_not_allowed', { headers: { Allow: allow } });
    },
    notImplemented: () => {
      throw problem('not_implemented');
    },
  });
  api.registerSecurityHandler('bearerAuth', bearerAuth);
  api.registerSecurityHandler('apiKeyHeader', apiKeyHeader);
  api.registerSecurityHandler('serviceKey', serviceKey);
  await api.init();
  await api.loadDocument();
  api.validateDefinition();
  // openapi-backend's router rebuilds its operation list (a lodash chain copying every operation)
  // on each call, and matchOperation calls it twice per request; the document is fixed once
  // init() has run, so build the list once (measured: ~36 → ~3 µs of routing per request).
  const operations = api.router.getOperations();
  api.router.getOperations = () => operations;
  for (const op of operations) if (op.requestBody || (op.parameters ?? []).length > 0) validated.add(op.operationId!);
  leanRouting(api, operations);
  return api;
}

/**
 * Two shortcuts through openapi-backend's per-request work that change no outcome, for the
 * contract as it is (no query or cookie parameters; path templates on two operations only):
 *
 * - handleRequest parses every request twice, once before routing (for a preRoutingHandler,
 *   which rst has not) and once with the operation. A request with no query string, no cookie
 *   and a parsed (or no) body, to an operation without path template, gets the same parse
 *   without lodash's header copy, the cookie and query parsers and the path template compiled
 *   per request; anything else goes the library's own way.
 * - Routing a path without template is a lookup once it has been routed once (the document is
 *   fixed); template paths and unknown ones take the library's way, which also says 404 or 405.
 */
function leanRouting(api: OpenAPIBackend, operations: Operation[]): void {
  const router = api.router;
  const parse = router.parseRequest.bind(router);
  router.parseRequest = (req, operation) => {
    const plain =
      (req.query === '' || req.query === undefined) &&
      !req.headers.cookie &&
      (req.body === undefined || typeof req.body === 'object') &&
      (operation === undefined || !operation.path.includes('{'));
    if (!plain) return parse(req, operation);
    return {
      method: req.method.toLowerCase(),
      path: req.path,
      headers: req.headers,
      query: {},
      params: {},
      cookies: {},
      body: req.body,
      requestBody: req.body,
    };
  };
  const match = router.matchOperation.bind(router);
  const statics = new Map<string, Operation>();
  const staticPaths = new Set(operations.filter((op) => !op.path.includes('{')).map((op) => op.path));
  router.matchOperation = ((req: Request, strict?: boolean) => {
    const key = `${req.method} ${req.path}`;
    const known = statics.get(key);
    if (known) return known;
    const found = match(req, strict as true);
    // Only exact paths are kept: a bounded set, whatever paths clients send.
    if (found && found.path === req.path && staticPaths.has(found.path)) statics.set(key, found);
    return found;
  }) as typeof router.matchOperation;
}

/**
 * The handlers, those that may change a credential or an account (every operation but reads and
 * introspection) wrapped to settle the credential cache before they answer, whatever they answer
 * (a refused refresh ends a session): the caller's next request, on this instance, must not be
 * answered from what this process knew before the change. Other instances hear it from the
 * database a moment later.
 */
function settling(document: Document, deps: Deps): typeof handlers {
  const readOnly = new Set<string>(['introspect']);
  for (const item of Object.values(document.paths ?? {}))
    if (item?.get?.operationId) readOnly.add(item.get.operationId);
  const wrapped: Record<string, unknown> = {};
  for (const [id, handler] of Object.entries(handlers)) {
    wrapped[id] = readOnly.has(id)
      ? handler
      : async (...args: Parameters<typeof handler>) => {
          try {
            return await (handler as (...a: unknown[]) => Promise<unknown>)(...args);
          } finally {
            await deps.credentialCache.settle();
          }
        };
  }
  return wrapped as typeof handlers;
}

/** The innermost layer: the request, routed by the contract, to its handler; the reply to Koa. */
export function operations(api: OpenAPIBackend, deps: Deps): Middleware {
  return async (ctx) => {
    const res = (await api.handleRequest(
      {
        // HEAD is GET without the body (RFC 9110 §9.3.2): routed, authenticated and answered as
        // GET, and Koa leaves the body out.
        method: ctx.method === 'HEAD' ? 'GET' : ctx.method,
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
  };
}
