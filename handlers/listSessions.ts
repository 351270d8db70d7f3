import type { ListSessionsData, ListSessionsResponses } from '../generated/types.gen.ts';
import { listActiveSessions } from '../db/sessions.ts';
import { requireSessionOwner } from '../http/security.ts';
import type { Operation } from '../http/operation.ts';

export const listSessions: Operation<ListSessionsData, ListSessionsResponses> = async (c, _ctx, { db }) => {
  const owner = requireSessionOwner(c);
  const sessions = await listActiveSessions(db, owner.account.id);
  return {
    status: 200,
    headers: { 'Cache-Control': 'no-store' },
    body: {
      items: sessions.map((s) => ({
        id: s.id,
        method: s.method,
        created_at: s.created_at.toISOString(),
        last_used_at: s.last_used_at.toISOString(),
        expires_at: s.expires_at.toISOString(),
        user_agent: s.user_agent,
        ip: s.ip,
        current: s.id === owner.sessionId,
      })),
    },
  };
};
