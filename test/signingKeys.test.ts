// JWT signing keys end to end, per algorithm: the server signs at login, verifies on a read,
// publishes its public keys at /.well-known/jwks.json, and rotates keys (an older key still
// verifies while listed; a removed one is refused). Tokens are checked and forged with jose, an
// independent implementation, so the test does not trust the code under test. No algorithm
// confusion: the configured algorithm is the only one accepted.
import { createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { expect } from 'chai';
import { calculateJwkThumbprint, createLocalJWKSet, decodeProtectedHeader, exportJWK, jwtVerify, SignJWT } from 'jose';
import jwt from 'jsonwebtoken';
import { getAccount, getJwks } from '../generated/sdk.gen.ts';
import { DB_LABEL, ON_POSTGRES } from './support/database.ts';
import { startServer, TEST_ENV, type TestServer } from './support/server.ts';
import { registeredUser } from './support/users.ts';

type Asymmetric = 'EdDSA' | 'ES256';
const newKey = (alg: Asymmetric): KeyObject =>
  alg === 'EdDSA'
    ? generateKeyPairSync('ed25519').privateKey
    : generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const pemOf = (key: KeyObject) => key.export({ format: 'pem', type: 'pkcs8' }) as string;
const kidOf = async (key: KeyObject) => calculateJwkThumbprint(await exportJWK(createPublicKey(key)), 'sha256');

/** The session of each test account (from its login token), for the tokens forged for it. */
const sessions = new Map<string, string>();
const signedIn = async (server: TestServer, prefix: string) => {
  const user = await registeredUser(server, prefix);
  sessions.set(user.id, (jwt.decode(user.token) as { sid: string }).sid);
  return user;
};

/** A token as the server would sign it, made with jose; `header` and `claims` override. */
async function forge(
  key: KeyObject | Uint8Array,
  alg: string,
  sub: string,
  { header = {}, claims = {} }: { header?: Record<string, unknown>; claims?: Record<string, unknown> } = {},
): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub, sid: sessions.get(sub), iss: 'rst', aud: 'rst-api', iat, exp: iat + 600, ...claims })
    .setProtectedHeader({ alg, typ: 'JWT', ...header })
    .sign(key);
}

const status = async (server: TestServer, token: string) =>
  (await getAccount({ client: server.as(token) })).response!.status;

for (const alg of ['EdDSA', 'ES256'] as const) {
  describe(`${alg} signing keys (${DB_LABEL})`, () => {
    const current = newKey(alg);
    const previous = newKey(alg);
    let server: TestServer;
    let user: Awaited<ReturnType<typeof registeredUser>>;
    before(async () => {
      // The new key first (it signs), the previous one after it (it still verifies).
      server = await startServer({
        env: { JWT_ALGORITHM: alg, JWT_PRIVATE_KEYS: `${pemOf(current)}\n${pemOf(previous)}` },
      });
      user = await signedIn(server, alg.toLowerCase());
    });
    after(async () => {
      await server?.stop();
    });

    it('signs sessions with the first key, named by its RFC 7638 thumbprint, and verifies them', async () => {
      const header = decodeProtectedHeader(user.token);
      expect(header).to.deep.equal({ alg, typ: 'JWT', kid: await kidOf(current) });
      expect(await status(server, user.token)).to.equal(200);
    });

    it('publishes both public keys, signing one first, cacheable for 5 minutes, and nothing private', async () => {
      const { data, response } = await getJwks({ client: server.client, throwOnError: true });
      expect(response.headers.get('cache-control')).to.equal('public, max-age=300');
      const expected = await Promise.all(
        [current, previous].map(async (key) => {
          const { kty, crv, x, y } = await exportJWK(createPublicKey(key));
          return { kty, crv, x, ...(y ? { y } : {}), kid: await kidOf(key), alg, use: 'sig' };
        }),
      );
      expect(data.keys).to.deep.equal(expected);
      expect(JSON.stringify(data)).not.to.match(/"d"/);
    });

    it('lets a product verify a session offline with jose and the JWKS alone', async () => {
      const { data } = await getJwks({ client: server.client, throwOnError: true });
      const { payload, protectedHeader } = await jwtVerify(user.token, createLocalJWKSet(data), {
        issuer: 'rst',
        audience: 'rst-api',
        algorithms: [alg],
      });
      expect(protectedHeader.alg).to.equal(alg);
      expect(payload).to.include({ sub: user.id, sid: sessions.get(user.id), iss: 'rst', aud: 'rst-api' });
      expect(payload.exp! - payload.iat!).to.equal(3600);
    });

    it('still accepts a token of the previous key while it is listed', async () => {
      const token = await forge(previous, alg, user.id, { header: { kid: await kidOf(previous) } });
      expect(await status(server, token)).to.equal(200);
    });

    it('refuses a key it does not hold, a kid that does not match the signature, and no kid', async () => {
      const stranger = newKey(alg);
      expect(
        await status(server, await forge(stranger, alg, user.id, { header: { kid: await kidOf(stranger) } })),
      ).to.equal(401);
      expect(
        await status(server, await forge(stranger, alg, user.id, { header: { kid: await kidOf(current) } })),
      ).to.equal(401);
      expect(await status(server, await forge(current, alg, user.id))).to.equal(401);
    });

    it('refuses HS256 (with the shared secret or the public key as secret), alg none and the other curve', async () => {
      const kid = await kidOf(current);
      const secret = new TextEncoder().encode(TEST_ENV.JWT_SECRET);
      expect(await status(server, await forge(secret, 'HS256', user.id, { header: { kid } }))).to.equal(401);
      // The classic confusion: the public key's bytes used as an HMAC secret.
      const publicPem = createPublicKey(current).export({ format: 'pem', type: 'spki' }) as string;
      const confused = jwt.sign({ sid: sessions.get(user.id), sub: user.id, iss: 'rst', aud: 'rst-api' }, publicPem, {
        algorithm: 'HS256',
        keyid: kid,
        expiresIn: 600,
      });
      expect(await status(server, confused)).to.equal(401);
      const [, payload] = user.token.split('.');
      const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT', kid })).toString('base64url');
      expect(await status(server, `${none}.${payload}.`)).to.equal(401);
      const other: Asymmetric = alg === 'EdDSA' ? 'ES256' : 'EdDSA';
      const otherKey = newKey(other);
      expect(
        await status(server, await forge(otherKey, other, user.id, { header: { kid: await kidOf(otherKey) } })),
      ).to.equal(401);
    });

    it('checks the claims: expiry, not-before, issuer, audience, a crit header, a tampered payload', async () => {
      const kid = await kidOf(current);
      const now = Math.floor(Date.now() / 1000);
      const refusedClaims: Record<string, unknown>[] = [
        { exp: now - 5 },
        { nbf: now + 600 },
        { iss: 'someone-else' },
        { aud: 'another-api' },
      ];
      for (const claims of refusedClaims)
        expect(
          await status(server, await forge(current, alg, user.id, { header: { kid }, claims })),
          JSON.stringify(claims),
        ).to.equal(401);
      expect(
        await status(
          server,
          await forge(current, alg, user.id, { header: { kid }, claims: { aud: ['x', 'rst-api'] } }),
        ),
      ).to.equal(200);
      // jose refuses to sign a crit it does not know, so these are signed by hand (RFC 7515); the
      // same token without crit is the control.
      const byHand = (header: object) => {
        const input = [
          header,
          { sub: user.id, sid: sessions.get(user.id), iss: 'rst', aud: 'rst-api', iat: now, exp: now + 600 },
        ]
          .map((part) => Buffer.from(JSON.stringify(part)).toString('base64url'))
          .join('.');
        const hash = alg === 'EdDSA' ? null : 'sha256';
        return `${input}.${sign(hash, Buffer.from(input), { key: current, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
      };
      expect(await status(server, byHand({ alg, kid }))).to.equal(200);
      expect(await status(server, byHand({ alg, kid, crit: ['x-rst'], 'x-rst': true }))).to.equal(401);
      const [h, p, s] = user.token.split('.');
      const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
      claims.exp += 3600;
      expect(await status(server, `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`)).to.equal(
        401,
      );
      expect(await status(server, `${h}.${p}.${s!.slice(0, -4)}AAAA`)).to.equal(401);
    });

    it('refuses a token of a key once it is removed from JWT_PRIVATE_KEYS', async function () {
      this.timeout(60_000);
      const rotated = await startServer({ env: { JWT_ALGORITHM: alg, JWT_PRIVATE_KEYS: pemOf(current) } });
      try {
        const owner = await signedIn(rotated, 'rotated');
        const { data } = await getJwks({ client: rotated.client, throwOnError: true });
        expect(data.keys.map((k) => k.kid)).to.deep.equal([await kidOf(current)]);
        expect(await status(rotated, owner.token)).to.equal(200);
        const old = await forge(previous, alg, owner.id, { header: { kid: await kidOf(previous) } });
        expect(await status(rotated, old)).to.equal(401);
        expect(
          await status(rotated, await forge(current, alg, owner.id, { header: { kid: await kidOf(current) } })),
        ).to.equal(200);
      } finally {
        await rotated.stop();
      }
    });
  });
}

describe(`HS256 signing, the default (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  it('publishes an empty key set and refuses an asymmetric token', async () => {
    const { data, response } = await getJwks({ client: server.client, throwOnError: true });
    expect(response.headers.get('cache-control')).to.equal('public, max-age=300');
    expect(data).to.deep.equal({ keys: [] });
    const user = await signedIn(server, 'hs');
    expect(decodeProtectedHeader(user.token)).to.deep.equal({ alg: 'HS256', typ: 'JWT' });
    const key = newKey('EdDSA');
    expect(await status(server, await forge(key, 'EdDSA', user.id, { header: { kid: await kidOf(key) } }))).to.equal(
      401,
    );
  });

  it('answers a query string on the key set with 400', async () => {
    const res = await fetch(`${server.url}/.well-known/jwks.json?all=1`);
    expect(res.status).to.equal(400);
  });
});

describe(`a generated signing key (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    // No JWT_SECRET either: with EdDSA it signs nothing, and the codes' key is generated too.
    server = await startServer({ env: { JWT_SECRET: '', JWT_ALGORITHM: 'EdDSA' } });
  });
  after(async () => {
    await server?.stop();
  });

  it('signs with one Ed25519 key generated at first start and kept in the database', async () => {
    const { data } = await getJwks({ client: server.client, throwOnError: true });
    expect(data.keys).to.have.length(1);
    expect(data.keys[0]).to.include({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    const user = await signedIn(server, 'gen');
    expect(decodeProtectedHeader(user.token).kid).to.equal(data.keys[0]!.kid);
    await jwtVerify(user.token, createLocalJWKSet(data), { issuer: 'rst', audience: 'rst-api' });
    if (ON_POSTGRES) {
      const [row] = await server.sql<{ value: string }>(
        `select value from settings where key = 'jwt_private_key_eddsa'`,
      );
      const stored = createPublicKey(row!.value).export({ format: 'jwk' }) as { x: string };
      expect(stored.x).to.equal(data.keys[0]!.x);
    }
  });

  if (ON_POSTGRES) {
    it('is shared by a second instance on the same database, which accepts the first one’s tokens', async function () {
      this.timeout(60_000);
      const second = await startServer({ shareDatabaseWith: server, env: { JWT_SECRET: '', JWT_ALGORITHM: 'EdDSA' } });
      try {
        const [a, b] = await Promise.all(
          [server, second].map(async (s) => (await getJwks({ client: s.client, throwOnError: true })).data),
        );
        expect(b).to.deep.equal(a);
        const user = await signedIn(server, 'shared');
        expect(await status(second, user.token)).to.equal(200);
      } finally {
        await second.stop();
      }
    });
  }
});
