// High-entropy one-time secrets (recovery tokens, refresh tokens): 32 bytes from the CSPRNG
// (256 bits), base64url, kept at rest only as an HMAC under the service's code key with a label
// per purpose, so a token of one kind never matches a hash of another. At that entropy guessing
// is hopeless, so a lookup by hash needs no constant-time compare: the hash an attacker would
// have to match is unknown to them, and the raw token is never stored.
import { createHmac, randomBytes } from 'node:crypto';

const TOKEN_BYTES = 32;

export const newToken = (): string => randomBytes(TOKEN_BYTES).toString('base64url');

export const hashToken = (key: Buffer, purpose: 'recovery' | 'refresh', token: string): string =>
  createHmac('sha256', key).update(`${purpose}:${token}`).digest('base64url');
