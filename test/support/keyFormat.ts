// The key format of API.md (rst_ and rst_svc_ keys), written out again here so the tests do not
// trust the code under test: CRC32 (IEEE) of the 36 random characters, 6 base62 digits.
import { crc32 } from 'node:zlib';

export const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export function expectedChecksum(random: string): string {
  let n = crc32(Buffer.from(random, 'ascii'));
  let out = '';
  for (let i = 0; i < 6; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}
