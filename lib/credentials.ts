// How a presented JWT or rst_ API key becomes its owner, in two steps that every authenticated
// request and introspection share, so introspection can never call active what a read would
// refuse:
//   1. present(): what the token is by its shape, checksum and signature alone (no database);
//      null when that already refuses it;
//   2. one indexed statement (the Lookup) finds the owner, and admit() decides on the row.
// An authenticated read runs the Lookup alone; introspection runs the very same statement inside
// the one that also authenticates and counts its caller (db/serviceKeys.ts).
import { foundSession, type OwnerRow, sessionLookup } from '../db/accounts.ts';
import { apiKeyLookup, type FoundApiKey, foundApiKey } from '../db/apiKeys.ts';
import { type Db, type Lookup, selectRows } from '../db/knex.ts';
import { hashApiKey, isWellFormedApiKey, looksLikeApiKey } from './apiKeys.ts';
import type { JwtService, SessionClaims } from './jwt.ts';
import type { UseRecorder } from './useRecorder.ts';

export type Presented = { kind: 'api_key'; lookup: Lookup } | { kind: 'jwt'; claims: SessionClaims; lookup: Lookup };

export type Principal =
  | { kind: 'jwt'; account: OwnerRow; claims: SessionClaims; sessionId: string }
  | { kind: 'api_key'; account: OwnerRow; key: FoundApiKey['key'] };

export function present(jwt: JwtService, token: string): Presented | null {
  if (looksLikeApiKey(token)) {
    // A service key (rst_svc_…) starts like an API key and fails this shape: never a user credential.
    if (!isWellFormedApiKey(token)) return null;
    return { kind: 'api_key', lookup: apiKeyLookup(hashApiKey(token)) };
  }
  const claims = jwt.verify(token);
  const lookup = claims && sessionLookup(claims.sid, claims.sub);
  return claims && lookup ? { kind: 'jwt', claims, lookup } : null;
}

/** The owner, or null when the row found (or its absence) refuses the token. */
export function admit(presented: Presented, row: object | undefined, uses: Uses): Principal | null {
  // No row: an unknown, revoked or expired key; or a session that logout, a revocation, a password
  // reset or a Google takeover guard ended: the token dies with it, on every instance, at once.
  if (!row) return null;
  // last_used_at within a minute without a write per request (lib/useRecorder.ts).
  if (presented.kind === 'api_key') {
    const found = foundApiKey(row);
    if (found.touchDue) uses.keyUses.mark(found.key.id);
    return { kind: 'api_key', account: found.account, key: found.key };
  }
  const found = foundSession(row);
  if (found.touchDue) uses.sessionUses.mark(presented.claims.sid);
  return { kind: 'jwt', account: found.account, claims: presented.claims, sessionId: presented.claims.sid };
}

/** Where uses are recorded. */
export interface Uses {
  keyUses: UseRecorder;
  sessionUses: UseRecorder;
}

/**
 * An authenticated request's whole check: one indexed query. The key lookup is by SHA-256 of the
 * presented key, so its timing depends on a digest the caller cannot steer, never on how much of
 * a stored secret they guessed.
 */
export async function authenticate(deps: Uses & { db: Db; jwt: JwtService }, token: string): Promise<Principal | null> {
  const presented = present(deps.jwt, token);
  if (!presented) return null;
  const [row] = await selectRows<object>(deps.db, presented.lookup.statement, presented.lookup.values);
  return admit(presented, row, deps);
}
