// Anything thrown, as RFC 9457 application/problem+json: edge() calls these for every error, so
// this is the one place an error becomes a response. Internals never reach the client.
import { classifyDatabaseError } from '../db/errors.ts';
import type { Problem as ProblemBody } from '../generated/types.gen.ts';
import { Problem, problem, serviceUnavailable } from '../lib/problems.ts';
import type { RequestContext } from './state.ts';

/** Maps anything thrown to a Problem. */
export function toProblem(err: unknown): Problem {
  if (err instanceof Problem) return err;
  const failure = classifyDatabaseError(err);
  // A deadlock or serialization failure reaching here has already had its one retry (withRetry).
  if (failure === 'unavailable' || failure === 'transient') return serviceUnavailable();
  if (failure === 'invalid_input') {
    return problem('validation_failed', {
      detail: 'A value could not be read or stored as given (a character such as U+0000, or a malformed id).',
      errors: [{ path: '/', message: 'contains a value the database cannot read or store' }],
    });
  }
  // A path with broken percent-encoding (`/v1/auth/api-keys/%ZZ`) fails decoding in the router.
  if (err instanceof URIError) {
    return problem('validation_failed', {
      errors: [{ path: '/path', message: 'has malformed percent-encoding' }],
    });
  }
  return problem('internal_error', {
    detail: 'Something went wrong on our side; it has been logged.',
  });
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

export function renderProblem(ctx: RequestContext, p: Problem): void {
  ctx.status = p.status;
  for (const [name, value] of Object.entries(p.extra.headers ?? {})) ctx.set(name, value);
  ctx.body = problemBody(p);
  // Koa resets the type to JSON for object bodies: set it after the body.
  ctx.type = 'application/problem+json';
}
