// What every handler may use, built once at start from the validated config.
import { createPrivateKey, hkdfSync, randomBytes } from 'node:crypto';
import type { Config } from '../config.ts';
import type { Db } from '../db/knex.ts';
import { touchApiKeys } from '../db/apiKeys.ts';
import { touchSessions } from '../db/sessions.ts';
import { getOrCreateSetting } from '../db/settings.ts';
import { CredentialCache } from './credentialCache.ts';
import type { Cached } from './credentials.ts';
import { createGoogleVerifier, type GoogleVerifier } from './google.ts';
import { generatePrivateKeyPem, JwtService, type JwtSigning } from './jwt.ts';
import { type LimitKeys, limitKeysFor } from './limits.ts';
import type { Logger } from './logger.ts';
import { loadMailTemplates, type MailTemplates } from './mail.ts';
import { PasswordHasher } from './passwords.ts';
import { Readiness } from './readiness.ts';
import { UseRecorder } from './useRecorder.ts';

export interface Deps {
  config: Readonly<Config>;
  db: Db;
  log: Logger;
  hasher: PasswordHasher;
  jwt: JwtService;
  /** HMAC key for verification codes, recovery and refresh tokens at rest (derived from the JWT secret). */
  codeKey: Buffer;
  /** Rate-limit counter keys: HMACs under a key derived from the JWT secret, like codeKey. */
  limitKeys: LimitKeys;
  /** null when GOOGLE_CLIENT_ID is unset: /v1/auth/google answers 503 google_not_configured. */
  google: GoogleVerifier | null;
  /** Record API key and session uses in batches (last_used_at within a minute, no write per request). */
  keyUses: UseRecorder;
  sessionUses: UseRecorder;
  /** What authenticated reads found, kept coherent by the database (server.ts starts its listener). */
  credentialCache: CredentialCache<Cached>;
  /** The checked mail templates (built-in, or from MAIL_TEMPLATES_DIR). */
  mailTemplates: MailTemplates;
  /** Pending migrations or a shutdown make /readyz answer 503. */
  readiness: Readiness;
  /** Nudges the email delivery worker after a transaction that queued mail has committed. */
  wakeOutboxWorker: () => void;
}

export async function createDeps(config: Readonly<Config>, db: Db, log: Logger): Promise<Deps> {
  // Without JWT_SECRET (allowed outside production) one is generated once and kept in the
  // database, so every instance on that database and every restart share it.
  const secret =
    config.jwtSecret ?? (await getOrCreateSetting(db, 'jwt_secret', () => randomBytes(48).toString('base64url')));
  const hasher = new PasswordHasher(config.scrypt, config.kdfConcurrency, config.kdfMaxQueue);
  await hasher.ready();
  return {
    config,
    db,
    log,
    hasher,
    jwt: new JwtService({
      ...(await jwtSigning(config, db, secret)),
      ttlSeconds: config.jwtTtlSeconds,
      issuer: config.jwtIssuer,
      audience: config.jwtAudience,
    }),
    codeKey: Buffer.from(hkdfSync('sha256', secret, 'rst-auth', 'one-time codes and tokens', 32)),
    // A key of its own (HKDF info), so a counter key never equals a code or token hash.
    limitKeys: limitKeysFor(secret),
    google: createGoogleVerifier(config),
    keyUses: new UseRecorder(db, log, 'API key', touchApiKeys),
    sessionUses: new UseRecorder(db, log, 'session', touchSessions),
    credentialCache: new CredentialCache<Cached>({
      enabled: config.credentialCache.enabled,
      maxEntries: config.credentialCache.maxEntries,
      ttlMs: config.credentialCache.ttlSeconds * 1000,
    }),
    mailTemplates: loadMailTemplates(config),
    readiness: new Readiness(),
    wakeOutboxWorker: () => {},
  };
}

/**
 * What signs the sessions. Without JWT_PRIVATE_KEYS (refused in production) an asymmetric
 * algorithm gets one key generated once and kept in the database, like the HS256 secret, so
 * restarts and instances agree on it and the JWKS stays the same.
 */
async function jwtSigning(config: Readonly<Config>, db: Db, secret: string): Promise<JwtSigning> {
  const algorithm = config.jwtAlgorithm;
  if (algorithm === 'HS256') return { algorithm, secret };
  if (config.jwtPrivateKeys.length > 0) return { algorithm, privateKeys: config.jwtPrivateKeys };
  const pem = await getOrCreateSetting(db, `jwt_private_key_${algorithm.toLowerCase()}`, () =>
    generatePrivateKeyPem(algorithm),
  );
  return { algorithm, privateKeys: [createPrivateKey(pem)] };
}
