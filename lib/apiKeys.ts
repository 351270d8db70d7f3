// rst_ API keys: the format (API.md, "Authentication"), minting, and batched use records.
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

export const API_KEY_PREFIX = 'rst_';
/** Service keys (lib/serviceKeys.ts) share the format under a prefix of their own. */
export const SERVICE_KEY_PREFIX = 'rst_svc_';
/** API.md: at most 25 active keys per account (also the contract's maxItems of the list). */
export const MAX_ACTIVE_API_KEYS = 25;
export const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RANDOM_LENGTH = 36;
const CHECKSUM_LENGTH = 6;
/** The largest multiple of 62 that fits in a byte: bytes at or above it are dropped, so every
 * character is equally likely (no modulo bias). */
const UNBIASED_LIMIT = 248;

export interface NewApiKey {
  /** The whole key: shown once, and never stored or logged. */
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

/** A new key of the format under `keyPrefix`: the prefix, 36 random base62, 6 of checksum. */
export function mintKey(keyPrefix: string): NewApiKey {
  const random = randomBase62(RANDOM_LENGTH);
  const raw = `${keyPrefix}${random}${checksum(random)}`;
  return { raw, prefix: `${keyPrefix}${random.slice(0, 8)}`, hash: hashApiKey(raw) };
}

/** Shape and checksum only: true for every key of this prefix the service could have minted. A
 * service key is never a well-formed API key: `svc_` is not base62. */
export function isWellFormedKey(keyPrefix: string, raw: string): boolean {
  if (raw.length !== keyPrefix.length + RANDOM_LENGTH + CHECKSUM_LENGTH || !raw.startsWith(keyPrefix)) return false;
  const random = raw.slice(keyPrefix.length, keyPrefix.length + RANDOM_LENGTH);
  const sum = raw.slice(keyPrefix.length + RANDOM_LENGTH);
  return /^[0-9A-Za-z]+$/.test(random + sum) && sum === checksum(random);
}

export const newApiKey = (): NewApiKey => mintKey(API_KEY_PREFIX);

/** Routes a credential to key authentication (as opposed to JWT); the full check is below. */
export const looksLikeApiKey = (credential: string): boolean => credential.startsWith(API_KEY_PREFIX);

export const isWellFormedApiKey = (raw: string): boolean => isWellFormedKey(API_KEY_PREFIX, raw);
