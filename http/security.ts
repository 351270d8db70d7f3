// Authentication for openapi-backend's security schemes. A handler returns the principal or
// false; when no scheme is satisfied openapi-backend calls unauthorizedHandler, which is
// unauthorized() below. The owner always comes from the credential, never from the request body.
import type { Context } from 'openapi-backend';
import { findOwnerBySession, type OwnerRow } from '../db/accounts.ts';
import { authenticateApiKey, looksLikeApiKey } from '../lib/apiKeys.ts';
import type { Deps } from '../lib/deps.ts';
import { consume, limitKey } from '../lib/limits.ts';
import { problem } from '../lib/problems.ts';
import type { RequestContext } from './state.ts';

export interface Principal {
  kind: 'jwt' | 'api_key';
  account: OwnerRow;
  apiKeyId?: string;
  /** The session a JWT belongs to. */
  sessionId?: string;
}

/** A credential was refused, as opposed to none being sent. */
class Refused extends Error {}

function bearerToken(ctx: RequestContext): string | undefined {
  const header = ctx.get('authorization');
  if (!header) return undefined;
  const m = /^Bearer +([^\s]+) *$/i.exec(header);
  if (!m) throw new Refused('malformed Authorization header');
  return m[1];
}

async function resolve(deps: Deps, credential: string): Promise<Principal> {
  if (looksLikeApiKey(credential)) {
    const found = await authenticateApiKey(deps.db, deps.keyUses, credential);
    if (!found) throw new Refused('unknown API key');
    return { kind: 'api_key', account: found.account, apiKeyId: found.keyId };
  }
  const claims = deps.jwt.verify(credential);
  if (!claims) throw new Refused('invalid JWT');
  // Logout, a revoked session, a password reset or a Google takeover guard ended the row: the
  // token dies with it, on every instance, on the next request.
  const found = await findOwnerBySession(deps.db, claims.sid, claims.sub);
  if (!found) throw new Refused('ended session');
  if (found.touchDue) deps.sessionUses.mark(claims.sid);
  return { kind: 'jwt', account: found.account, sessionId: claims.sid };
}

/** Runs a scheme's check, remembering whether a credential was sent and refused, and letting
 * infrastructure failures (database down) surface as themselves rather than as a 401. */
function scheme(read: (ctx: RequestContext) => string | undefined) {
  return async (_c: Context, ctx: RequestContext, deps: Deps): Promise<Principal | false> => {
    let credential: string | undefined;
    try {
      credential = read(ctx);
      if (credential === undefined) return false;
      return await resolve(deps, credential);
    } catch (err) {
      // A failure outranks a refusal from the other scheme: the answer is then the failure's (503).
      if (err instanceof Refused) ctx.state.credential ??= { outcome: 'refused' };
      else ctx.state.credential = { outcome: 'failed', cause: err };
      return false;
    }
  };
}

export const bearerAuth = scheme(bearerToken);
// X-API-Key carries only rst_ keys: a JWT there is refused rather than accepted through a header
// the contract does not name for it.
export const apiKeyHeader = scheme((ctx) => {
  const credential = ctx.get('x-api-key') || undefined;
  if (credential !== undefined && !looksLikeApiKey(credential)) throw new Refused('X-API-Key without an API key');
  return credential;
});

/** No scheme of the operation was satisfied. */
export async function unauthorized(ctx: RequestContext, { config, db }: Pick<Deps, 'config' | 'db'>): Promise<never> {
  const { credential } = ctx.state;
  if (credential?.outcome === 'failed') throw credential.cause;
  const refused = credential?.outcome === 'refused';
  // Refused tokens and keys are counted per client IP (a missing one costs nothing to check),
  // so guessing credentials or hammering the key lookup ends in 429.
  if (refused) await consume(db, [{ key: limitKey('auth-fail-ip', ctx.ip), rule: config.limits.authFailureIp }]);
  throw problem('unauthorized', {
    detail: refused
      ? 'The token or API key is malformed, expired, revoked or wrongly signed.'
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
