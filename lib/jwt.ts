// JWT access tokens, signed with one algorithm and pinned to it on verification, with iss/aud/exp
// checked, naming their account (`sub`) and their session (`sid`); the session row, read on every
// request, decides whether the token still counts, so ending a session ends its tokens at once.
//
// HS256 (the default) is jsonwebtoken with a shared secret. EdDSA (Ed25519) and ES256 (P-256) sign
// with private keys whose public halves anyone may fetch (GET /.well-known/jwks.json), so a
// product's backend verifies tokens without holding a secret that could mint them. Every token
// names its key by `kid`, the RFC 7638 thumbprint of the public key, so keys rotate in and out.
// The asymmetric algorithms are JWS compact serialisation (RFC 7515) on node:crypto: jsonwebtoken 9
// has no EdDSA, and jose verifies through crypto.subtle, which runs on the libuv pool and would
// queue an authenticated read behind password hashing in a login storm (STACK-NOTES.md).
// node:crypto signs and verifies both synchronously (~50 µs and ~100–120 µs here).
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
  sign as signBytes,
  verify as verifyBytes,
} from 'node:crypto';
import jwt from 'jsonwebtoken';

export const JWT_ALGORITHMS = ['HS256', 'EdDSA', 'ES256'] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];
export type AsymmetricAlgorithm = Exclude<JwtAlgorithm, 'HS256'>;

/** What each asymmetric algorithm needs of a key (RFC 8037 for EdDSA, RFC 7518 §3.4 for ES256). */
const ASYMMETRIC: Record<AsymmetricAlgorithm, { keyType: string; curve?: string; hash: string | null; label: string }> =
  {
    EdDSA: { keyType: 'ed25519', hash: null, label: 'an Ed25519' },
    ES256: { keyType: 'ec', curve: 'prime256v1', hash: 'sha256', label: 'a P-256 (prime256v1) EC' },
  };

export interface SessionClaims {
  sub: string;
  sid: string;
  iat: number;
  exp: number;
}

/** A public key as GET /.well-known/jwks.json serves it (RFC 7517). */
export interface PublicJwk {
  kty: 'OKP' | 'EC';
  crv: 'Ed25519' | 'P-256';
  x: string;
  y?: string;
  kid: string;
  alg: AsymmetricAlgorithm;
  use: 'sig';
}

interface VerifyingKey {
  publicKey: KeyObject;
  jwk: PublicJwk;
}

/** How verified tokens are remembered (a few MB at most; the oldest is forgotten first). */
const VERIFIED_MAX = 10_000;
const SEGMENT = /^[A-Za-z0-9_-]+$/;

/** The private keys of a PEM text (one or more PEM blocks), each checked against the algorithm.
 * Problems never quote key material. */
export function parsePrivateKeys(algorithm: AsymmetricAlgorithm, pem: string): KeyObject[] | string {
  const blocks = pem.match(/-----BEGIN [A-Z0-9 ]+-----[\s\S]*?-----END [A-Z0-9 ]+-----/g) ?? [];
  let rest = pem;
  for (const block of blocks) rest = rest.replace(block, '');
  if (blocks.length === 0) return 'expected one or more PEM private keys';
  if (rest.trim() !== '') return 'holds text outside its PEM blocks';
  const keys: KeyObject[] = [];
  const kids = new Set<string>();
  for (const [i, block] of blocks.entries()) {
    let key: KeyObject;
    try {
      key = createPrivateKey(block);
    } catch {
      return `key ${i + 1} is not a readable PEM private key`;
    }
    const want = ASYMMETRIC[algorithm];
    if (key.asymmetricKeyType !== want.keyType || (want.curve && key.asymmetricKeyDetails?.namedCurve !== want.curve))
      return `key ${i + 1} is not ${want.label} private key, as JWT_ALGORITHM=${algorithm} needs`;
    const kid = publicJwk(algorithm, key).kid;
    if (kids.has(kid)) return `key ${i + 1} is listed twice`;
    kids.add(kid);
    keys.push(key);
  }
  return keys;
}

/** A new private key for the algorithm, as PKCS #8 PEM (kept in the database outside production). */
export function generatePrivateKeyPem(algorithm: AsymmetricAlgorithm): string {
  const { privateKey } =
    algorithm === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
}

/** The public JWK of a key, its `kid` being the RFC 7638 thumbprint: SHA-256 over the required
 * members in lexicographic order, without whitespace. */
export function publicJwk(algorithm: AsymmetricAlgorithm, key: KeyObject): PublicJwk {
  const exported = createPublicKey(key).export({ format: 'jwk' }) as Pick<PublicJwk, 'kty' | 'crv' | 'x' | 'y'>;
  const required =
    exported.kty === 'EC'
      ? { crv: exported.crv, kty: exported.kty, x: exported.x, y: exported.y }
      : { crv: exported.crv, kty: exported.kty, x: exported.x };
  const kid = createHash('sha256').update(JSON.stringify(required)).digest('base64url');
  return { ...required, kid, alg: algorithm, use: 'sig' };
}

const b64json = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');

function parseSegment(segment: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

export type JwtSigning =
  | { algorithm?: 'HS256'; secret: string }
  | { algorithm: AsymmetricAlgorithm /** the first signs; every one verifies */; privateKeys: KeyObject[] };

export class JwtService {
  readonly algorithm: JwtAlgorithm;
  readonly ttlSeconds: number;
  private readonly issuer: string;
  private readonly audience: string;
  // HS256: a KeyObject made once; given a Buffer or string, jsonwebtoken converts the secret again
  // on every sign and verify (measured at 150–220 µs per verify, against 23–40 µs with the key).
  private readonly secret: KeyObject | undefined;
  private readonly signingKey: { privateKey: KeyObject; kid: string } | undefined;
  private readonly byKid = new Map<string, VerifyingKey>();
  // Tokens already verified, by their exact text, with their expiry. A client sends the same
  // token on every call for as long as it lives, and decoding it, checking its signature and its
  // claims again each time cost more than the rest of an authenticated read's own work. Only a
  // string that passed verification here is ever found and expiry is checked on every use. Only
  // the signature check is cached: whether the session is still active comes from its row, which
  // every request reads anyway (lib/credentials.ts). A key removed from JWT_PRIVATE_KEYS takes a
  // restart, which empties this too.
  private readonly verified = new Map<string, SessionClaims>();

  constructor(opts: JwtSigning & { ttlSeconds: number; issuer: string; audience: string }) {
    this.ttlSeconds = opts.ttlSeconds;
    this.issuer = opts.issuer;
    this.audience = opts.audience;
    if ('secret' in opts) {
      this.algorithm = 'HS256';
      this.secret = createSecretKey(Buffer.from(opts.secret));
      return;
    }
    this.algorithm = opts.algorithm;
    if (opts.privateKeys.length === 0) throw new Error('an asymmetric JWT algorithm needs at least one private key');
    for (const privateKey of opts.privateKeys) {
      const jwk = publicJwk(opts.algorithm, privateKey);
      this.byKid.set(jwk.kid, { publicKey: createPublicKey(privateKey), jwk });
    }
    this.signingKey = { privateKey: opts.privateKeys[0]!, kid: publicJwk(opts.algorithm, opts.privateKeys[0]!).kid };
  }

  /** The public keys, the signing one first; none with HS256 (its secret verifies and signs). */
  jwks(): PublicJwk[] {
    return [...this.byKid.values()].map((k) => k.jwk);
  }

  sign(accountId: string, sessionId: string): string {
    const iat = Math.floor(Date.now() / 1000);
    const claims = {
      sub: accountId,
      sid: sessionId,
      iat,
      exp: iat + this.ttlSeconds,
      iss: this.issuer,
      aud: this.audience,
      jti: randomUUID(),
    };
    if (this.secret) return jwt.sign(claims, this.secret, { algorithm: 'HS256' });
    const alg = this.algorithm as AsymmetricAlgorithm;
    const input = `${b64json({ alg, typ: 'JWT', kid: this.signingKey!.kid })}.${b64json(claims)}`;
    const signature = signBytes(ASYMMETRIC[alg].hash, Buffer.from(input), {
      key: this.signingKey!.privateKey,
      dsaEncoding: 'ieee-p1363', // JWS ES256 is r‖s, 64 bytes, not DER (RFC 7518 §3.4)
    });
    return `${input}.${signature.toString('base64url')}`;
  }

  /** Returns the claims, or null for anything not a valid, unexpired session token of ours. */
  verify(token: string): SessionClaims | null {
    const now = Math.floor(Date.now() / 1000);
    const known = this.verified.get(token);
    if (known) {
      // The same rule as jsonwebtoken's: expired once the clock reaches exp.
      if (now < known.exp) return known;
      this.verified.delete(token);
      return null;
    }
    const payload = this.secret ? this.verifyHs256(token, now) : this.verifyAsymmetric(token, now);
    if (!payload) return null;
    // A token that never expires is refused, and so is one that names no session (nothing could
    // end it).
    const { sub, sid, iat, exp } = payload;
    if (typeof exp !== 'number' || typeof iat !== 'number' || typeof sub !== 'string' || typeof sid !== 'string')
      return null;
    const claims: SessionClaims = { sub, sid, iat, exp };
    if (this.verified.size >= VERIFIED_MAX) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, claims);
    return claims;
  }

  private verifyHs256(token: string, now: number): Record<string, unknown> | null {
    try {
      const payload = jwt.verify(token, this.secret!, {
        algorithms: ['HS256'],
        issuer: this.issuer,
        audience: this.audience,
        clockTimestamp: now,
      });
      return typeof payload === 'object' && payload !== null ? payload : null;
    } catch {
      return null;
    }
  }

  /**
   * The algorithm is the configured one, never the token's choice (RFC 8725 §3.1): a header naming
   * another (HS256 with the public key as secret, `none`) is refused before any key is used, and
   * the key is found by `kid` among ours only. `crit` extensions are not understood, so refused.
   */
  private verifyAsymmetric(token: string, now: number): Record<string, unknown> | null {
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((p) => SEGMENT.test(p))) return null;
    const [encodedHeader, encodedPayload, encodedSignature] = parts as [string, string, string];
    const header = parseSegment(encodedHeader);
    if (!header || header.alg !== this.algorithm || typeof header.kid !== 'string' || 'crit' in header) return null;
    const key = this.byKid.get(header.kid);
    if (!key) return null;
    const signature = Buffer.from(encodedSignature, 'base64url');
    if (signature.length !== 64) return null;
    const signed = verifyBytes(
      ASYMMETRIC[this.algorithm as AsymmetricAlgorithm].hash,
      Buffer.from(`${encodedHeader}.${encodedPayload}`),
      { key: key.publicKey, dsaEncoding: 'ieee-p1363' },
      signature,
    );
    if (!signed) return null;
    const payload = parseSegment(encodedPayload);
    if (!payload || payload.iss !== this.issuer) return null;
    const aud = payload.aud;
    if (aud !== this.audience && !(Array.isArray(aud) && aud.includes(this.audience))) return null;
    if (typeof payload.exp !== 'number' || now >= payload.exp) return null;
    if (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || now < payload.nbf)) return null;
    return payload;
  }
}
