// Sessions (API.md "Version 1.1 — Sessions"): opened by a password or Google sign-in, renewed by
// rotating refresh tokens, ended by logout, revocation, a password reset, the Google takeover
// guard or an unlink. A session lives 30 days past its last refresh and at most 90 days in all.
import { openSession, rotateRefreshToken, type SessionMethod } from '../db/sessions.ts';
import type { Db } from '../db/knex.ts';
import type { JwtService } from './jwt.ts';
import { hashToken, newToken } from './tokens.ts';

const DAY = 86400;
export const SESSION_LIFETIMES = { idleSeconds: 30 * DAY, absoluteSeconds: 90 * DAY, maxActive: 100 };
const USER_AGENT_MAX = 256;

export interface Tokens {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  refresh_token: string;
}

const tokens = (jwt: JwtService, accountId: string, sessionId: string, refreshToken: string): Tokens => ({
  access_token: jwt.sign(accountId, sessionId),
  token_type: 'bearer',
  expires_in: jwt.ttlSeconds,
  refresh_token: refreshToken,
});

/** The User-Agent as listed: at most 256 characters (code points, so no pair is cut in two). */
const userAgentOf = (header: string | undefined): string | null =>
  header ? Array.from(header).slice(0, USER_AGENT_MAX).join('') : null;

/** Opens a session for a sign-in that has just succeeded and hands out its first tokens. */
export async function startSession(
  db: Db,
  jwt: JwtService,
  codeKey: Buffer,
  signIn: { accountId: string; method: SessionMethod; userAgent: string | undefined; ip: string },
): Promise<Tokens> {
  const refreshToken = newToken();
  const sessionId = await openSession(
    db,
    {
      accountId: signIn.accountId,
      method: signIn.method,
      refreshHash: hashToken(codeKey, 'refresh', refreshToken),
      userAgent: userAgentOf(signIn.userAgent),
      ip: signIn.ip || null,
    },
    SESSION_LIFETIMES,
  );
  return tokens(jwt, signIn.accountId, sessionId, refreshToken);
}

/** Spends a refresh token for new tokens of its session; see rotateRefreshToken for the rules. */
export async function refreshSession(
  db: Db,
  jwt: JwtService,
  codeKey: Buffer,
  refreshToken: string,
): Promise<Tokens | 'spent' | undefined> {
  const next = newToken();
  const rotated = await rotateRefreshToken(
    db,
    hashToken(codeKey, 'refresh', refreshToken),
    hashToken(codeKey, 'refresh', next),
    SESSION_LIFETIMES.idleSeconds,
  );
  if (rotated === undefined || rotated === 'spent') return rotated;
  return tokens(jwt, rotated.accountId, rotated.sessionId, next);
}
