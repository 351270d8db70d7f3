// JSON only (application/json). A body of any other type is 415 before anything tries to read it; a JSON body is
// parsed by koa-body within the size limit. One layer for both, so a request without a body pays
// for one closure call, not two.
import { koaBody } from 'koa-body';
import { problem } from '../lib/problems.ts';
import type { Middleware } from './state.ts';

// DELETE too: deleting the account carries its re-authentication in the body (RFC 9110 §9.3.5
// gives a DELETE body no generic meaning, and this API gives it one, declared in the contract).
const PARSED_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'] as const;
const BODY_METHODS = new Set<string>(PARSED_METHODS);

export function jsonBodyOnly(limitBytes: number): Middleware {
  const parseBody = koaBody({
    json: true,
    urlencoded: false,
    text: false,
    multipart: false,
    jsonStrict: true,
    jsonLimit: limitBytes,
    parsedMethods: [...PARSED_METHODS] as NonNullable<Parameters<typeof koaBody>[0]>['parsedMethods'],
    onError: (err: Error & { status?: number; type?: string }) => {
      if (err.status === 413)
        throw problem('payload_too_large', {
          detail: `Bodies are limited to ${limitBytes} bytes.`,
        });
      if (err.status === 415) throw problem('unsupported_media_type', { detail: 'Send UTF-8 JSON.' });
      throw problem('invalid_json');
    },
  });
  // koa-body is asked only about the methods it parses, so a GET pays nothing for it.
  return (ctx, next) => {
    const hasBody = Number(ctx.get('content-length') || 0) > 0 || ctx.get('transfer-encoding') !== '';
    // application/json only, not every `+json` type: a JSON Merge Patch (RFC 7396) or a JSON:API
    // document carries semantics this API does not implement, and koa-body would parse some
    // such types and silently skip others. Refused whole, never half-accepted.
    if (hasBody && !ctx.is('application/json')) {
      throw problem('unsupported_media_type', {
        detail: 'Send the body as application/json.',
      });
    }
    return BODY_METHODS.has(ctx.method) ? parseBody(ctx, next) : next();
  };
}
