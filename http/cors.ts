// CORS for browser apps on other origins that use the SDK. Only the origins listed in
// CORS_ORIGINS get Access-Control-Allow-Origin; with none listed (the default) the middleware is
// not mounted at all, so no response carries a CORS header and browsers keep the same-origin rule.
//
// Credentials travel in the Authorization or X-API-Key header, never in cookies, so
// Access-Control-Allow-Credentials stays off: a listed origin can call the API with a token it
// holds, and no origin can ride on ambient browser credentials.
import koaCors from '@koa/cors';
import type Koa from 'koa';

export const CORS_ALLOW_HEADERS = ['Authorization', 'Content-Type', 'X-API-Key', 'X-Request-Id'];
export const CORS_EXPOSE_HEADERS = ['X-Request-Id', 'Retry-After', 'WWW-Authenticate'];
export const CORS_ALLOW_METHODS = ['GET', 'HEAD', 'POST', 'DELETE'];

/** For a non-empty list; http/app.ts mounts nothing at all when CORS_ORIGINS is empty. */
export function cors(origins: readonly string[]): Koa.Middleware {
  const allowed = new Set(origins);
  return koaCors({
    // Exact match on the serialised origin (scheme://host[:port]); returning '' makes
    // @koa/cors pass the request on without any Access-Control-* header.
    origin: (ctx) => (allowed.has(ctx.get('Origin')) ? ctx.get('Origin') : ''),
    allowMethods: CORS_ALLOW_METHODS,
    allowHeaders: CORS_ALLOW_HEADERS,
    exposeHeaders: CORS_EXPOSE_HEADERS,
    maxAge: 600,
    credentials: false,
  });
}
