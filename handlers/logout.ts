import type { LogoutData, LogoutResponses } from '../generated/types.gen.ts';
import { endSession, endSessions } from '../db/sessions.ts';
import { requireSessionOwner } from '../http/security.ts';
import type { Operation } from '../http/operation.ts';

export const logout: Operation<LogoutData, LogoutResponses> = async (c, _ctx, { db }) => {
  const owner = requireSessionOwner(c);
  // No body at all is the default scope, as an empty object is.
  const scope = (c.request.requestBody as { scope?: 'current' | 'others' | 'all' } | undefined)?.scope ?? 'current';
  const accountId = owner.account.id;
  if (scope === 'current') await endSession(db, accountId, owner.sessionId);
  else await endSessions(db, accountId, scope === 'others' ? { except: owner.sessionId } : {});
  return { status: 204, body: undefined };
};
