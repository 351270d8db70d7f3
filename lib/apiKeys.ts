// rst_ API keys: the format (API.md, "Authentication"), minting, and authentication.
//
//   rst_ + 36 random base62 characters + 6 base62 characters of CRC32 (IEEE) of those 36
//
// The checksum lets a secret scanner, a client or this server refuse a mistyped or made-up key
// without a database lookup (GitHub's token format works the same way). At rest only SHA-256 of
// the whole key is kept: the key carries ~214 bits of entropy, so a slow KDF would add nothing but
// cost on every request. Hashing is synchronous node:crypto on purpose: async crypto would queue
// behind scrypt on the libuv pool during a login storm (STACK-NOTES.md).
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { OwnerRow } from '../db/accounts.ts';
import { findAccountByApiKeyHash } from '../db/apiKeys.ts';
import type { Db } from '../db/knex.ts';
import type { UseRecorder } from './useRecorder.ts';

export const API_KEY_PREFIX = 'rst_';
/** API.md: at most 25 active keys per account (also the contract's maxItems of the list). */
export const MAX_ACTIVE_API_KEYS = 25;
export const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RANDOM_LENGTH = 36;
const CHECKSUM_LENGTH = 6;
const SHAPE = /^rst_[0-9A-Za-z]{42}$/;
/** The largest multiple of 62 that fits in a byte: bytes at or above it are dropped, so every
 * character is equally likely (no modulo bias). */
const UNBIASED_LIMIT = 248;

export interface NewApiKey {
  /** The whole key: shown once, in the 201, and never stored or logged. */
  raw: string;
  prefix: string;
  hash: string;
}

function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte >= UNBIASED_LIMIT) continue;
      out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/** CRC32 (IEEE) of the random part, in base62, left-padded with 0 to 6 characters. 62^6 > 2^32,
 * so every CRC fits. */
export function checksum(random: string): string {
  let value = crc32(Buffer.from(random, 'ascii'));
  let out = '';
  do {
    out = BASE62[value % 62] + out;
    value = Math.floor(value / 62);
  } while (value > 0);
  return out.padStart(CHECKSUM_LENGTH, '0');
}

export const hashApiKey = (raw: string): string => createHash('sha256').update(raw, 'utf8').digest('hex');

export function newApiKey(): NewApiKey {
  const random = randomBase62(RANDOM_LENGTH);
  const raw = `${API_KEY_PREFIX}${random}${checksum(random)}`;
  return { raw, prefix: `${API_KEY_PREFIX}${random.slice(0, 8)}`, hash: hashApiKey(raw) };
}

/** Routes a credential to key authentication (as opposed to JWT); the full check is below. */
export const looksLikeApiKey = (credential: string): boolean => credential.startsWith(API_KEY_PREFIX);

/** Shape and checksum only: true for every key this service could have minted. */
export function isWellFormedApiKey(raw: string): boolean {
  if (!SHAPE.test(raw)) return false;
  const random = raw.slice(API_KEY_PREFIX.length, API_KEY_PREFIX.length + RANDOM_LENGTH);
  return raw.slice(API_KEY_PREFIX.length + RANDOM_LENGTH) === checksum(random);
}

/**
 * One indexed query (api_keys_key_hash_key, joined to accounts) finds an active key and its
 * account. The lookup is by SHA-256 of the presented key, so its timing depends on a digest the
 * caller cannot steer, never on how much of a stored secret they guessed.
 */
export async function authenticateApiKey(
  db: Db,
  keyUses: UseRecorder,
  raw: string,
): Promise<{ account: OwnerRow; keyId: string } | null> {
  if (!isWellFormedApiKey(raw)) return null;
  const found = await findAccountByApiKeyHash(db, hashApiKey(raw));
  if (!found) return null;
  // last_used_at within a minute without a write per request (lib/useRecorder.ts).
  if (found.touchDue) keyUses.mark(found.keyId);
  return { account: found.account, keyId: found.keyId };
}
