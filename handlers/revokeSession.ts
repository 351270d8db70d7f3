import type { RevokeSessionData, RevokeSessionResponses } from '../generated/types.gen.ts';
import { endSession } from '../db/sessions.ts';
import { requireSessionOwner } from '../http/security.ts';
import { problem } from '../lib/problems.ts';
import type { Operation } from '../http/operation.ts';

// Unknown, ended and another account's session get the same 404, so session ids of other accounts
// cannot be probed. The session's JWTs are refused from the next request on: every read checks
// the row.
export const revokeSession: Operation<RevokeSessionData, RevokeSessionResponses> = async (c, _ctx, { db }) => {
  const owner = requireSessionOwner(c);
  if (!(await endSession(db, owner.account.id, c.request.params.session_id))) {
    throw problem('session_not_found', { detail: 'This account has no active session with that id.' });
  }
  return { status: 204, body: undefined };
};
