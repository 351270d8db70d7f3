// A stand-in for Google's side of sign-in, with no network: an HTTP server on 127.0.0.1 serving
// signing certificates in the format of https://www.googleapis.com/oauth2/v1/certs
// (`{ "<kid>": "-----BEGIN CERTIFICATE-----…" }`, self-signed X.509), and a minter of real RS256 ID
// tokens signed with the matching private key, so the service runs the real verifyIdToken path.
import { createHmac, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startServer, type TestServer } from './server.ts';

export interface GoogleFake {
  /** GOOGLE_CERTS_URL for the server under test. */
  certsUrl: string;
  /** A client id (audience) to configure as GOOGLE_CLIENT_ID. */
  audience: string;
  kid: string;
  /** The PEM certificate served under `kid`. */
  certificate: string;
  /** How many times the certificates were fetched. */
  fetches(): number;
  /** An ID token with Google's claims for this identity; `claims` overrides or adds any of them
   * (undefined removes one), `header` overrides the JOSE header. */
  mint(identity: { sub: string; email: string }, opts?: MintOptions): string;
  stop(): Promise<void>;
}

export interface MintOptions {
  claims?: Record<string, unknown>;
  header?: Record<string, unknown>;
  /** Sign with this key instead of the served one (a forgery). */
  key?: KeyObject;
}

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

export async function startGoogleFake(): Promise<GoogleFake> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomBytes(20).toString('hex');
  const certificate = selfSignedCertificate(privateKey, publicKey, 'accounts.google.com');
  new X509Certificate(certificate); // fails here, not in the service, if the encoding is wrong
  const audience = `${randomBytes(6).toString('hex')}-test.apps.googleusercontent.com`;
  let fetches = 0;

  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/certs') {
      fetches++;
      // Google sends a max-age, which the library honours: the service fetches once per window.
      res.writeHead(200, {
        'Content-Type': 'application/json; charset=UTF-8',
        'Cache-Control': 'public, max-age=3600',
      });
      res.end(JSON.stringify({ [kid]: certificate }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    certsUrl: `http://127.0.0.1:${port}/certs`,
    audience,
    kid,
    certificate,
    fetches: () => fetches,
    mint(identity, opts = {}) {
      const now = Math.floor(Date.now() / 1000);
      const claims: Record<string, unknown> = {
        iss: 'https://accounts.google.com',
        azp: audience,
        aud: audience,
        sub: identity.sub,
        email: identity.email,
        email_verified: true,
        iat: now,
        exp: now + 3600,
        ...opts.claims,
      };
      for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k];
      const header = { alg: 'RS256', kid, typ: 'JWT', ...opts.header };
      const signingInput = `${b64url(header)}.${b64url(claims)}`;
      const signature = sign('sha256', Buffer.from(signingInput), opts.key ?? privateKey).toString('base64url');
      return `${signingInput}.${signature}`;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The HS256 "key confusion" forgery: a token MACed with the served certificate as the secret. */
export function hmacWithCertificate(token: string, secret: string): string {
  const [, payload] = token.split('.');
  const header = b64url({ alg: 'HS256', typ: 'JWT' });
  const signingInput = `${header}.${payload}`;
  return `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
}

/** A fresh RSA key that the certificate server does not know about. */
export function otherKey(): KeyObject {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
}

/** A Google-style subject: up to 21 decimal digits, unique per call. */
export function newSub(): string {
  return `1${BigInt(`0x${randomBytes(8).toString('hex')}`)
    .toString()
    .padStart(20, '0')}`.slice(0, 21);
}

// ---------------------------------------------------------------- a minimal DER X.509 writer

function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const len = body.length;
  let head: Buffer;
  if (len < 0x80) head = Buffer.from([tag, len]);
  else if (len < 0x100) head = Buffer.from([tag, 0x81, len]);
  else head = Buffer.from([tag, 0x82, len >> 8, len & 0xff]);
  return Buffer.concat([head, body]);
}
const seq = (...c: Buffer[]) => der(0x30, ...c);
const set = (...c: Buffer[]) => der(0x31, ...c);
const int = (bytes: Buffer) => der(0x02, bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
const oid = (dotted: string) => {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [a! * 40 + b!];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = n >> 7; v > 0; v >>= 7) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return der(0x06, Buffer.from(out));
};
const utcTime = (d: Date) => der(0x17, Buffer.from(`${d.toISOString().slice(2, 19).replace(/[-:T]/g, '')}Z`));
const name = (cn: string) => seq(set(seq(oid('2.5.4.3'), der(0x0c, Buffer.from(cn)))));
const SHA256_WITH_RSA = seq(oid('1.2.840.113549.1.1.11'), der(0x05));

// A positive serial whose first byte is non-zero, so its DER encoding is minimal.
const serialNumber = () => {
  const bytes = randomBytes(8);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes;
};

/** A self-signed X.509 v3 certificate (RFC 5280 §4.1) over the key pair, valid for a day. */
function selfSignedCertificate(privateKey: KeyObject, publicKey: KeyObject, cn: string): string {
  const now = Date.now();
  const tbs = seq(
    der(0xa0, int(Buffer.from([2]))),
    int(serialNumber()),
    SHA256_WITH_RSA,
    name(cn),
    seq(utcTime(new Date(now - 3600_000)), utcTime(new Date(now + 86400_000))),
    name(cn),
    publicKey.export({ type: 'spki', format: 'der' }),
  );
  const signature = sign('sha256', tbs, privateKey);
  const cert = seq(tbs, SHA256_WITH_RSA, der(0x03, Buffer.from([0]), signature));
  const lines = cert
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n');
  return `-----BEGIN CERTIFICATE-----\n${lines}\n-----END CERTIFICATE-----\n`;
}

/** A Google fake and a server that trusts it (GOOGLE_CLIENT_ID and GOOGLE_CERTS_URL pointed at it). */
export async function startServerWithGoogle(env: Record<string, string> = {}): Promise<{
  google: GoogleFake;
  server: TestServer;
  stop(): Promise<void>;
}> {
  const google = await startGoogleFake();
  const server = await startServer({
    env: { GOOGLE_CLIENT_ID: google.audience, GOOGLE_CERTS_URL: google.certsUrl, ...env },
  });
  return {
    google,
    server,
    stop: async () => {
      await server.stop();
      await google.stop();
    },
  };
}
