// How a presented JWT or rst_ API key becomes its owner, in two steps that every authenticated
// request and introspection share, so introspection can never call active what a read would
// refuse:
//   1. present(): what the token is by its shape, checksum and signature alone (no database);
//      null when that already refuses it;
//   2. one indexed statement (the Lookup) finds the owner, and admit() decides on the row.
// An authenticated read runs the Lookup alone, or finds what it found last time in the credential
// cache (lib/credentialCache.ts), which the database keeps exactly up to date; introspection
// always runs the very same statement inside the one that also authenticates and counts its
// caller (db/serviceKeys.ts): that count is a round trip anyway.
import { foundSession, type OwnerRow, sessionLookup } from '../db/accounts.ts';
import { apiKeyLookup, type FoundApiKey, foundApiKey } from '../db/apiKeys.ts';
import { type Db, type Lookup, selectRows } from '../db/knex.ts';
import { hashApiKey, isWellFormedApiKey, looksLikeApiKey } from './apiKeys.ts';
import type { CacheEntry, CredentialCache } from './credentialCache.ts';
import type { JwtService, SessionClaims } from './jwt.ts';
import type { UseRecorder } from './useRecorder.ts';

/** `cacheKey`: what the credential is cached under (the key's hash; the session and its account). */
export type Presented =
  | { kind: 'api_key'; lookup: Lookup; cacheKey: string }
  | { kind: 'jwt'; claims: SessionClaims; lookup: Lookup; cacheKey: string };

export type Principal =
  | { kind: 'jwt'; account: OwnerRow; claims: SessionClaims; sessionId: string }
  | { kind: 'api_key'; account: OwnerRow; key: FoundApiKey['key'] };

export function present(jwt: JwtService, token: string): Presented | null {
  if (looksLikeApiKey(token)) {
    // A service key (rst_svc_…) starts like an API key and fails this shape: never a user credential.
    if (!isWellFormedApiKey(token)) return null;
    const hash = hashApiKey(token);
    return { kind: 'api_key', lookup: apiKeyLookup(hash), cacheKey: `k:${hash}` };
  }
  const claims = jwt.verify(token);
  const lookup = claims && sessionLookup(claims.sid, claims.sub);
  return claims && lookup ? { kind: 'jwt', claims, lookup, cacheKey: `s:${claims.sid}:${claims.sub}` } : null;
}

/** The owner, or null when the row found (or its absence) refuses the token. */
export function admit(presented: Presented, row: object | undefined, uses: Uses): Principal | null {
  return admitted(presented, row, uses)?.principal ?? null;
}

/** What a credential's owner looks like in the cache: the principal, less the token's own claims. */
export type Cached =
  | { kind: 'api_key'; account: OwnerRow; key: FoundApiKey['key'] }
  | { kind: 'jwt'; account: OwnerRow };

function admitted(
  presented: Presented,
  row: object | undefined,
  uses: Uses,
): { principal: Principal; cached: Cached; expiresIn: number | null; touched: boolean } | undefined {
  // No row: an unknown, revoked or expired key; or a session that logout, a revocation, a password
  // reset or a Google takeover guard ended: the token dies with it, on every instance, at once.
  if (!row) return undefined;
  // last_used_at within a minute without a write per request (lib/useRecorder.ts).
  if (presented.kind === 'api_key') {
    const found = foundApiKey(row);
    if (found.touchDue) uses.keyUses.mark(found.key.id);
    const principal = { kind: 'api_key' as const, account: found.account, key: found.key };
    return { principal, cached: principal, expiresIn: found.expiresIn, touched: found.touchDue };
  }
  const found = foundSession(row);
  if (found.touchDue) uses.sessionUses.mark(presented.claims.sid);
  return {
    principal: { kind: 'jwt', account: found.account, claims: presented.claims, sessionId: presented.claims.sid },
    cached: { kind: 'jwt', account: found.account },
    expiresIn: found.expiresIn,
    touched: found.touchDue,
  };
}

/** Where uses are recorded. */
export interface Uses {
  keyUses: UseRecorder;
  sessionUses: UseRecorder;
}

/**
 * How often a credential answered from the cache marks a use (the recorder's UPDATE writes only
 * rows older than its own 30 s): last_used_at then lags a use by at most about a minute, as when
 * every read asks the database.
 */
const MARK_EVERY_MS = 30_000;

/**
 * An authenticated request's whole check: the cache, or one indexed query. The key lookup is by
 * SHA-256 of the presented key (and the cache by the same digest), so its timing depends on a
 * digest the caller cannot steer, never on how much of a stored secret they guessed.
 */
export async function authenticate(
  deps: Uses & { db: Db; jwt: JwtService; credentialCache: CredentialCache<Cached> },
  token: string,
): Promise<Principal | null> {
  const presented = present(deps.jwt, token);
  if (!presented) return null;
  const cache = deps.credentialCache;
  const now = Date.now();
  const entry = cache.get(presented.cacheKey, now);
  if (entry) return fromCache(presented, entry, now, deps);
  const ticket = cache.ticket();
  const [row] = await selectRows<object>(deps.db, presented.lookup.statement, presented.lookup.values);
  const found = admitted(presented, row, deps);
  if (!found) return null;
  if (ticket !== undefined) {
    const stored = Date.now();
    cache.fill(ticket, presented.cacheKey, {
      accountId: found.cached.account.id,
      // Handlers get the same objects on every hit: frozen, so none can change what the next one sees.
      value: deepFreeze(found.cached),
      // Counted from before the query: the database's now() came later, so this never outlives it.
      expiresAt: found.expiresIn === null ? Number.POSITIVE_INFINITY : now + found.expiresIn * 1000,
      // A use not written now was written within the last 30 s, by the lookup's own measure.
      usedAt: found.touched ? stored : stored - MARK_EVERY_MS,
    });
  }
  return found.principal;
}

function fromCache(presented: Presented, entry: CacheEntry<Cached>, now: number, uses: Uses): Principal {
  const cached = entry.value;
  const due = now - entry.usedAt >= MARK_EVERY_MS;
  if (due) entry.usedAt = now;
  if (cached.kind === 'api_key') {
    if (due) uses.keyUses.mark(cached.key.id);
    return cached;
  }
  const { claims } = presented as Extract<Presented, { kind: 'jwt' }>;
  if (due) uses.sessionUses.mark(claims.sid);
  return { kind: 'jwt', account: cached.account, claims, sessionId: claims.sid };
}

function deepFreeze<T extends object>(value: T): T {
  for (const v of Object.values(value)) if (v && typeof v === 'object' && !Object.isFrozen(v)) deepFreeze(v);
  return Object.freeze(value);
}
