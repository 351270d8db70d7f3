// Authentication for openapi-backend's security schemes. A handler returns the principal or
// false; when no scheme is satisfied openapi-backend calls unauthorizedHandler, which is
// unauthorized() below. The owner always comes from the credential, never from the request body.
import type { Context } from 'openapi-backend';
import { hashApiKey, looksLikeApiKey } from '../lib/apiKeys.ts';
import { authenticate, type Principal } from '../lib/credentials.ts';
import type { Deps } from '../lib/deps.ts';
import { consume } from '../lib/limits.ts';
import { problem } from '../lib/problems.ts';
import { isWellFormedServiceKey } from '../lib/serviceKeys.ts';
import type { RequestContext } from './state.ts';

export type { Principal };

/** A credential was refused, as opposed to none being sent. */
class Refused extends Error {}

function bearerToken(ctx: RequestContext): string | undefined {
  const header = ctx.get('authorization');
  if (!header) return undefined;
  const m = /^Bearer +([^\s]+) *$/i.exec(header);
  if (!m) throw new Refused('malformed Authorization header');
  return m[1];
}

function resolve(deps: Deps, credential: string, ctx: RequestContext): Promise<Principal> {
  const checked = ctx.state.checked;
  if (checked?.credential === credential) return checked.principal;
  const principal = authenticate(deps, credential).then((found) => {
    if (!found) throw new Refused('malformed, unknown, expired or revoked credential');
    return found;
  });
  ctx.state.checked = { credential, principal };
  return principal;
}

/** Runs a scheme's check, remembering whether a credential was sent and refused, and letting
 * infrastructure failures (database down) surface as themselves rather than as a 401. */
function scheme<P>(
  read: (ctx: RequestContext) => string | undefined,
  check: (deps: Deps, credential: string, ctx: RequestContext) => P,
) {
  return async (_c: Context, ctx: RequestContext, deps: Deps): Promise<Awaited<P> | false> => {
    let credential: string | undefined;
    try {
      credential = read(ctx);
      if (credential === undefined) return false;
      return await check(deps, credential, ctx);
    } catch (err) {
      // A failure outranks a refusal from the other scheme: the answer is then the failure's (503).
      if (err instanceof Refused) ctx.state.credential ??= { outcome: 'refused' };
      else ctx.state.credential = { outcome: 'failed', cause: err };
      return false;
    }
  };
}

export const bearerAuth = scheme(bearerToken, resolve);
// X-API-Key carries only rst_ keys: a JWT there is refused rather than accepted through a header
// the contract does not name for it.
export const apiKeyHeader = scheme((ctx) => {
  const credential = ctx.get('x-api-key') || undefined;
  if (credential !== undefined && !looksLikeApiKey(credential)) throw new Refused('X-API-Key without an API key');
  return credential;
}, resolve);

/**
 * A product backend's service key, on introspection only. Here only its shape and checksum are
 * checked (a JWT or an rst_ key is refused at once); whether it exists is asked in the same
 * statement that inspects the token and counts the call (handlers/introspect.ts), so an
 * introspection is one round trip. The handler refuses an unknown key through refuseServiceKey.
 */
export const serviceKey = scheme(bearerToken, (_deps, credential): ServiceCaller => {
  if (!isWellFormedServiceKey(credential)) throw new Refused('not a service key');
  return { kind: 'service_key', keyHash: hashApiKey(credential) };
});

export interface ServiceCaller {
  kind: 'service_key';
  keyHash: string;
}

export function requireServiceCaller(c: Context): ServiceCaller {
  const caller = c.security.serviceKey as ServiceCaller | undefined;
  if (!caller) throw problem('unauthorized', { headers: { 'WWW-Authenticate': 'Bearer' } });
  return caller;
}

/** A well-formed service key that is unknown or revoked: the same 401 as any refused credential. */
export async function refuseServiceKey(
  ctx: RequestContext,
  deps: Pick<Deps, 'config' | 'db' | 'limitKeys'>,
): Promise<never> {
  ctx.state.credential = { outcome: 'refused' };
  return unauthorized(ctx, deps);
}

/** No scheme of the operation was satisfied. */
export async function unauthorized(
  ctx: RequestContext,
  { config, db, limitKeys }: Pick<Deps, 'config' | 'db' | 'limitKeys'>,
): Promise<never> {
  const { credential } = ctx.state;
  if (credential?.outcome === 'failed') throw credential.cause;
  const refused = credential?.outcome === 'refused';
  // Refused tokens and keys are counted per client IP (a missing one costs nothing to check),
  // so guessing credentials or hammering the key lookup ends in 429.
  if (refused) await consume(db, [{ key: limitKeys.ofIp('auth-fail-ip', ctx.ip), rule: config.limits.authFailureIp }]);
  // Introspection takes a service key, and nothing else.
  const service = ctx.state.operationId === 'introspect';
  throw problem('unauthorized', {
    detail: refused
      ? `The ${service ? 'service key' : 'token or API key'} is malformed, expired, revoked or wrongly signed.`
      : service
        ? 'Send a service key (rst_svc_…) as a Bearer token.'
        : 'Send a JWT or an API key.',
    headers: { 'WWW-Authenticate': refused ? 'Bearer error="invalid_token"' : 'Bearer' },
  });
}

export function requireOwner(c: Context): Principal {
  const principal = (c.security.bearerAuth || c.security.apiKeyHeader) as Principal | undefined;
  if (!principal) throw problem('unauthorized', { headers: { 'WWW-Authenticate': 'Bearer' } });
  return principal;
}

/** "Session first, key second": only a JWT session may mint, list or revoke keys, or manage sessions. */
export function requireJwtOwner(
  c: Context,
  detail = 'API keys cannot manage API keys; sign in and use the session token.',
): Principal & { kind: 'jwt'; sessionId: string } {
  const principal = requireOwner(c);
  if (principal.kind !== 'jwt' || principal.sessionId === undefined) throw problem('jwt_required', { detail });
  return principal as Principal & { kind: 'jwt'; sessionId: string };
}

/** An API key is no session: it cannot list, end or log out of one. */
export const requireSessionOwner = (c: Context) =>
  requireJwtOwner(c, 'An API key belongs to no session; sign in and use the session token.');
