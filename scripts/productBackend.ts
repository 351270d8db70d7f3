// A product's own backend, as small as it gets: it answers GET / for a user of rst auth, who sends
// either a session JWT or an rst_ API key as `Authorization: Bearer …`.
//
//   - a JWT is verified offline, against rst's public keys (GET /.well-known/jwks.json, fetched
//     once and cached by jose; rst must run with JWT_ALGORITHM=EdDSA or ES256);
//   - an rst_ key is sent to POST /v1/auth/introspect with the product's service key.
//
//   RST_URL=http://127.0.0.1:3000 RST_SERVICE_KEY=rst_svc_… PORT=4000 node scripts/productBackend.ts
//   curl -s localhost:4000 -H "Authorization: Bearer $TOKEN_OR_KEY"
//
// An offline check cannot see a revocation (a logout, a password reset): a JWT stays valid here
// until it expires (at most JWT_TTL_SECONDS). Introspect JWTs too where that matters.
import http from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const rst = process.env.RST_URL ?? 'http://127.0.0.1:3000';
const serviceKey = process.env.RST_SERVICE_KEY ?? '';
const jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', rst));

type User = { sub: string; via: 'jwt' | 'api_key'; scopes: string[] };

async function whoIs(token: string): Promise<User | null> {
  if (token.startsWith('rst_')) {
    const res = await fetch(new URL('/v1/auth/introspect', rst), {
      method: 'POST',
      headers: { authorization: `Bearer ${serviceKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    });
    if (!res.ok) throw new Error(`introspection answered ${res.status}`); // our service key, or rst is down
    const info = (await res.json()) as { active: boolean; sub: string; scopes: string[] };
    return info.active ? { sub: info.sub, via: 'api_key', scopes: info.scopes } : null;
  }
  const verified = await jwtVerify(token, jwks, { issuer: 'rst', audience: 'rst-api', algorithms: ['EdDSA', 'ES256'] })
    .then(({ payload }) => payload)
    .catch(() => null);
  return verified?.sub ? { sub: verified.sub, via: 'jwt', scopes: [] } : null;
}

const server = http.createServer(async (req, res) => {
  const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
  const [status, body] = await (token ? whoIs(token) : Promise.resolve(null)).then(
    (user) =>
      user ? [200, { hello: user.sub, via: user.via, scopes: user.scopes }] : [401, { error: 'unauthorized' }],
    () => [503, { error: 'cannot check credentials right now' }],
  );
  res.writeHead(status as number, { 'content-type': 'application/json' }).end(JSON.stringify(body));
});
server.listen(Number(process.env.PORT ?? 4000), '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  console.log(`product backend listening on http://127.0.0.1:${port}`);
});
