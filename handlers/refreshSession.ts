import type { RefreshSessionData, RefreshSessionResponses } from '../generated/types.gen.ts';
import { consume, limitKey, refund } from '../lib/limits.ts';
import { problem } from '../lib/problems.ts';
import { refreshSession as rotate } from '../lib/sessions.ts';
import type { Operation } from '../http/operation.ts';

export const refreshSession: Operation<RefreshSessionData, RefreshSessionResponses> = async (
  c,
  ctx,
  { config, db, jwt, codeKey, log },
) => {
  // Counted before the token is looked at and given back on success, like login: guessing
  // refresh tokens (or replaying stolen ones) from one address ends in 429.
  const key = limitKey('refresh-ip', ctx.ip);
  await consume(db, [{ key, rule: config.limits.refreshIp }]);
  const result = await rotate(db, jwt, codeKey, c.request.requestBody.refresh_token);
  if (result === undefined || result === 'spent') {
    if (result === 'spent') log.warn('spent refresh token presented again: its session has ended');
    // A refresh token is a credential: refused with 401 and an RFC 6750 challenge. Unknown, spent,
    // expired and ended get this one answer.
    throw problem('invalid_token', {
      status: 401,
      detail: 'Sign in again: this refresh token is unknown, used, expired or its session has ended.',
      headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
    });
  }
  await refund(db, [key]);
  return { status: 200, headers: { 'Cache-Control': 'no-store' }, body: result };
};
