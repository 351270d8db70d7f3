import type { IntrospectData, IntrospectResponses, Introspection } from '../generated/types.gen.ts';
import { introspectAs } from '../db/serviceKeys.ts';
import { refuseServiceKey, requireServiceCaller } from '../http/security.ts';
import type { Operation } from '../http/operation.ts';
import { admit, type Principal, present } from '../lib/credentials.ts';
import { tooManyRequests } from '../lib/problems.ts';

const seconds = (d: Date): number => Math.floor(d.getTime() / 1000);

function describe(p: Principal): Introspection {
  const a = p.account;
  const owner = {
    sub: a.id,
    username: a.username,
    email: a.email,
    email_verified: a.email_verified,
    plan: a.plan,
    plan_source: a.plan_source,
  };
  if (p.kind === 'api_key')
    return {
      active: true,
      token_type: 'api_key',
      ...owner,
      iat: seconds(p.key.createdAt),
      exp: p.key.expiresAt ? seconds(p.key.expiresAt) : null,
      key_id: p.key.id,
      scopes: p.key.scopes,
    };
  return {
    active: true,
    token_type: 'access_token',
    ...owner,
    iat: p.claims.iat,
    exp: p.claims.exp,
    session_id: p.sessionId,
  };
}

// RFC 7662 in spirit: whatever the inspected token is, the answer about it is a 200. Only the
// caller's own service key can earn a 401 or a 429; a refused inspected token costs the caller's
// IP nothing, because a product backend relays its users' tokens, good and bad.
export const introspect: Operation<IntrospectData, IntrospectResponses> = async (c, ctx, deps) => {
  const { config, db, jwt } = deps;
  const caller = requireServiceCaller(c);
  const presented = present(jwt, c.request.requestBody.token);
  const rule = config.limits.introspect;
  const result = await introspectAs(
    db,
    { keyHash: caller.keyHash, windowSeconds: rule.windowSeconds },
    presented?.lookup,
  );
  if (!result) return refuseServiceKey(ctx, deps);
  if (result.hit.count > rule.limit) throw tooManyRequests(result.hit.resetIn, rule);
  const principal = presented && admit(presented, result.row, deps);
  return {
    status: 200,
    headers: { 'Cache-Control': 'no-store' },
    body: principal ? describe(principal) : { active: false },
  };
};
