// The one error type of the service. Handlers and middleware throw it; app.ts renders it as
// RFC 9457 application/problem+json in one place. `code` is the public, stable catalogue listed
// in openapi.yaml's Problem schema: tests and clients match on it, never on the wording.
import type { Problem as ProblemBody } from '../generated/types.gen.ts';

export type ProblemCode = ProblemBody['code'];

export interface ProblemExtra {
  detail?: string;
  errors?: { path: string; message: string }[];
  headers?: Record<string, string>;
}

export class Problem extends Error {
  readonly status: number;
  readonly code: ProblemCode;
  readonly extra: ProblemExtra;
  constructor(status: number, code: ProblemCode, title: string, extra: ProblemExtra = {}) {
    super(title);
    this.status = status;
    this.code = code;
    this.extra = extra;
  }

  body(): ProblemBody {
    const body: ProblemBody = {
      type: `urn:rst-auth:problem:${this.code}`,
      title: this.message,
      status: this.status,
      code: this.code,
    };
    if (this.extra.detail) body.detail = this.extra.detail;
    if (this.extra.errors) body.errors = this.extra.errors;
    return body;
  }
}

/**
 * 429 with Retry-After (RFC 9110) and the RateLimit-* fields of the IETF httpapi draft
 * (draft-ietf-httpapi-ratelimit-headers): the quota that ran out, nothing remaining, and seconds
 * until its window resets. `rule` is the limit that was exceeded, when the caller knows it.
 */
export const tooManyRequests = (
  retryAfterSeconds: number,
  rule?: { limit: number; windowSeconds: number },
): Problem => {
  const headers: Record<string, string> = {
    'Retry-After': String(retryAfterSeconds),
    'RateLimit-Remaining': '0',
    'RateLimit-Reset': String(retryAfterSeconds),
  };
  if (rule) {
    headers['RateLimit-Limit'] = String(rule.limit);
    headers['RateLimit-Policy'] = `${rule.limit};w=${rule.windowSeconds}`;
  }
  return new Problem(429, 'too_many_requests', 'Too many requests', {
    detail: `Try again in ${retryAfterSeconds} seconds.`,
    headers,
  });
};

export const serviceUnavailable = (): Problem =>
  new Problem(503, 'service_unavailable', 'Service unavailable', {
    detail: 'The service cannot reach its database right now; retry shortly.',
    headers: { 'Retry-After': '5' },
  });

/** For operations whose issue has not landed yet. */
export const notImplemented = (): never => {
  throw new Problem(501, 'not_implemented', 'Not implemented yet');
};
