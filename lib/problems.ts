// The one error type of the service and the catalogue of its codes. Handlers and middleware
// throw it; http/problems.ts renders it as RFC 9457 application/problem+json in one place.
// `code` is the public, stable catalogue listed in openapi.yaml's Problem schema: tests and
// clients match on it, never on the wording.
import type { Problem as ProblemBody } from '../generated/types.gen.ts';

export type ProblemCode = ProblemBody['code'];

// Each code's status and title, once. Checked against the code enum generated from openapi.yaml:
// a code added to the contract fails tsc until it is listed here, and a misspelt one fails too.
const CATALOGUE = {
  validation_failed: [400, 'The request does not match the schema'],
  invalid_json: [400, 'The body is not valid JSON'],
  weak_password: [400, 'Password refused'],
  username_taken: [409, 'That username is taken'],
  email_taken: [409, 'An account with that email already exists'],
  invalid_credentials: [401, 'Invalid username or password'],
  email_not_verified: [403, 'Email not verified'],
  invalid_code: [400, 'Invalid or expired code'],
  invalid_google_credential: [401, 'Invalid Google credential'],
  google_not_configured: [503, 'Google sign-in is not configured'],
  // 400 for a recovery token in a body; a refresh token is a credential, refused with 401 (its
  // throw site says so through `status`).
  invalid_token: [400, 'Invalid, expired or used token'],
  unauthorized: [401, 'Authentication required'],
  jwt_required: [403, 'A JWT session is required'],
  api_key_limit_reached: [409, 'API key limit reached'],
  api_key_not_found: [404, 'API key not found'],
  session_not_found: [404, 'Session not found'],
  google_not_linked: [409, 'Google is not linked to this account'],
  password_required: [409, 'The account has no password'],
  reauthentication_failed: [403, 'Re-authentication failed'],
  google_already_linked: [409, 'This account already has a Google link'],
  google_account_in_use: [409, 'That Google account is linked to another account'],
  not_found: [404, 'Not found'],
  method_not_allowed: [405, 'Method not allowed'],
  payload_too_large: [413, 'Payload too large'],
  unsupported_media_type: [415, 'Unsupported media type'],
  too_many_requests: [429, 'Too many requests'],
  service_unavailable: [503, 'Service unavailable'],
  server_busy: [503, 'Server busy'],
  not_implemented: [501, 'Not implemented yet'],
  internal_error: [500, 'Internal error'],
} as const satisfies Record<ProblemCode, readonly [number, string]>;

/** What a throw site may add to its code's status and title. */
export interface ProblemExtra {
  /** Another status than the catalogue's, for the one code answered with two (invalid_token). */
  status?: 401;
  detail?: string;
  errors?: { path: string; message: string }[];
  headers?: Record<string, string>;
}

export class Problem extends Error {
  readonly status: number;
  readonly code: ProblemCode;
  readonly extra: ProblemExtra;
  constructor(code: ProblemCode, extra: ProblemExtra = {}) {
    const [status, title] = CATALOGUE[code];
    super(title);
    this.status = extra.status ?? status;
    this.code = code;
    this.extra = extra;
  }
}

/** `throw problem('google_not_linked')`: the code names its status and title. */
export const problem = (code: ProblemCode, extra?: ProblemExtra): Problem => new Problem(code, extra);

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
  return problem('too_many_requests', { detail: `Try again in ${retryAfterSeconds} seconds.`, headers });
};

export const serviceUnavailable = (): Problem =>
  problem('service_unavailable', {
    detail: 'The service cannot reach its database right now; retry shortly.',
    headers: { 'Retry-After': '5' },
  });

/** Every refusal of a Google credential — wrong audience, expired, forged, unverified email, wrong
 * nonce, garbage — is this one answer; the reason goes to the log only. */
export const invalidGoogleCredential = (detail?: string): Problem =>
  problem('invalid_google_credential', {
    ...(detail ? { detail } : {}),
    headers: { 'WWW-Authenticate': 'Bearer' },
  });

export const googleNotConfigured = (): Problem =>
  problem('google_not_configured', { detail: 'The server has no GOOGLE_CLIENT_ID.' });

/** The credential was good when the request began, but its account is gone (deleted meanwhile). */
export const accountGone = (): Problem =>
  problem('unauthorized', { headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } });
