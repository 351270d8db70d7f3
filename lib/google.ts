// Google ID-token verification (OpenID Connect Core 1.0 §3.1.3.7) with google-auth-library's
// OAuth2Client.verifyIdToken: signature against Google's published certificates, `aud` in
// GOOGLE_CLIENT_ID, `iss`, `iat`/`exp`. What the library leaves to us is checked here: the
// algorithm is pinned to RS256 before anything else, `email_verified` must be true (the library
// accepts false), and the token's `nonce` must equal the one the client sent.
// With no GOOGLE_CLIENT_ID there is no verifier and /v1/auth/google answers 503.
import { createHash, timingSafeEqual } from 'node:crypto';
import { OAuth2Client, type TokenPayload } from 'google-auth-library';
import type { Config } from '../config.ts';
import type { Logger } from './logger.ts';
import { googleNotConfigured, problem } from './problems.ts';

export interface GoogleIdentity {
  /** Google's stable account id: the only thing an account is linked by. */
  sub: string;
  /** Lower-cased; Google has verified it. */
  email: string;
  /** When Google issued the token (`iat`, seconds since the epoch): re-authentication wants it fresh. */
  issuedAt: number;
}

/** Why a credential was refused, for the log only: the client always gets one answer. */
export type GoogleRefusal =
  | 'malformed'
  | 'algorithm'
  | 'unknown_key'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'lifetime'
  | 'issuer'
  | 'audience'
  | 'claims'
  | 'email_unverified'
  | 'nonce';

export type GoogleVerdict = { identity: GoogleIdentity } | { refused: GoogleRefusal };

/** Google's certificates could not be read: our problem, not the client's credential. */
export class GoogleUnavailable extends Error {}

export interface GoogleVerifier {
  verify(credential: string, nonce?: string): Promise<GoogleVerdict>;
}

// Google's ID tokens name either form of the issuer. The library's own default list also
// admits its universe domain (googleapis.com), which never issues ID tokens: set it explicitly.
const ISSUERS = ['accounts.google.com', 'https://accounts.google.com'];

// The library reports every refusal as a plain Error whose message (which often embeds the whole
// token, so it is never logged) starts with one of these.
const LIBRARY_REFUSALS: [RegExp, GoogleRefusal][] = [
  [/^Wrong number of segments|^Can't parse/, 'malformed'],
  [/^No pem found/, 'unknown_key'],
  [/^Invalid token signature/, 'bad_signature'],
  [/^Token used too late/, 'expired'],
  [/^Token used too early/, 'not_yet_valid'],
  [/^Expiration time too far/, 'lifetime'],
  [/^Invalid issuer/, 'issuer'],
  [/^Wrong recipient/, 'audience'],
  [/^No issue time|^No expiration time|^iat field|^exp field/, 'claims'],
];

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

function header(credential: string): { alg?: unknown; kid?: unknown } | undefined {
  const parts = credential.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'));
    return typeof parsed === 'object' && parsed !== null ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export function createGoogleVerifier(config: Readonly<Config>): GoogleVerifier | null {
  if (config.googleClientIds.length === 0) return null;
  const audience = [...config.googleClientIds];
  const client = new OAuth2Client({
    issuers: ISSUERS,
    ...(config.googleCertsUrl ? { endpoints: { oauth2FederatedSignonPemCertsUrl: config.googleCertsUrl } } : {}),
    // A hung certificate endpoint must not hold sign-in requests open; the library retries a few
    // times on its own. Certificates are cached for their Cache-Control max-age.
    transporterOptions: { timeout: 5000 },
  });

  return {
    async verify(credential, nonce) {
      // Google signs ID tokens with RS256 only. Refusing anything else up front closes the door on
      // `alg: none` and on HS256-with-the-public-key confusion, whatever the library does later.
      const head = header(credential);
      if (!head) return { refused: 'malformed' };
      if (head.alg !== 'RS256') return { refused: 'algorithm' };
      if (typeof head.kid !== 'string') return { refused: 'malformed' };

      let payload: TokenPayload | undefined;
      try {
        payload = (await client.verifyIdToken({ idToken: credential, audience })).getPayload();
      } catch (err) {
        const message = err instanceof Error ? err.message : '';
        // The certificate fetch failing is ours to report (503), not the client's fault; its
        // message names the URL and the network error, never the token.
        if (message.startsWith('Failed to retrieve verification certificates')) throw new GoogleUnavailable(message);
        const match = LIBRARY_REFUSALS.find(([pattern]) => pattern.test(message));
        return { refused: match ? match[1] : 'malformed' };
      }
      if (!payload) return { refused: 'claims' };

      const { sub, email } = payload;
      if (typeof sub !== 'string' || sub.length === 0 || sub.length > 255) return { refused: 'claims' };
      if (typeof email !== 'string' || !email.includes('@') || email.length > 254) return { refused: 'claims' };
      // Google documents email_verified as a boolean but has sent the string "true".
      const verified = (payload.email_verified as unknown) === true || (payload.email_verified as unknown) === 'true';
      if (!verified) return { refused: 'email_unverified' };
      if (nonce !== undefined) {
        // Digests first: timingSafeEqual needs equal lengths, and the comparison then leaks nothing.
        if (typeof payload.nonce !== 'string' || !timingSafeEqual(digest(payload.nonce), digest(nonce)))
          return { refused: 'nonce' };
      }
      // verifyIdToken has refused a token without a numeric iat already.
      return { identity: { sub, email: email.toLowerCase(), issuedAt: payload.iat } };
    },
  };
}

/**
 * Verifies a credential for a handler: 503 google_not_configured without GOOGLE_CLIENT_ID, 503
 * service_unavailable (with Retry-After) when Google's certificates cannot be read — the server's
 * trouble, not the client's credential — and otherwise the verdict.
 */
export async function checkGoogleCredential(
  google: GoogleVerifier | null,
  log: Logger,
  credential: string,
  nonce?: string,
): Promise<GoogleVerdict> {
  if (!google) throw googleNotConfigured();
  try {
    return await google.verify(credential, nonce);
  } catch (err) {
    if (!(err instanceof GoogleUnavailable)) throw err;
    log.warn({ cause: err.message }, 'Google certificates could not be fetched');
    throw problem('service_unavailable', {
      detail: "Google's signing certificates cannot be read right now; retry shortly.",
      headers: { 'Retry-After': '30' },
    });
  }
}
