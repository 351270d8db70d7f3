// The worked example for product teams (scripts/productBackend.ts), run as its own process against
// a real rst auth server on EdDSA: a session JWT is verified offline against the JWKS, an rst_ key
// through introspection with the product's service key.
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { SignJWT } from 'jose';
import { createApiKey, revokeApiKey } from '../generated/sdk.gen.ts';
import { DB_LABEL } from './support/database.ts';
import { ROOT, startServer, TEST_ENV, type TestServer } from './support/server.ts';
import { createServiceKey, migratedDatabase } from './support/serviceKeys.ts';
import { registeredUser } from './support/users.ts';
import { waitFor } from './support/wait.ts';

describe(`the product backend example (${DB_LABEL})`, function () {
  this.timeout(60_000);
  let server: TestServer;
  let backend: ChildProcess;
  let backendUrl: string;
  let output = '';
  before(async () => {
    const database = await migratedDatabase();
    const serviceKey = await createServiceKey(database, 'example-shop');
    server = await startServer({ database, env: { JWT_ALGORITHM: 'EdDSA' } });
    backend = spawn(process.execPath, [path.join(ROOT, 'scripts/productBackend.ts')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', RST_URL: server.url, RST_SERVICE_KEY: serviceKey, PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    backend.stdout!.on('data', (d: Buffer) => (output += d.toString('utf8')));
    backend.stderr!.on('data', (d: Buffer) => (output += d.toString('utf8')));
    backendUrl = await waitFor(() => /listening on (http:\/\/\S+)/.exec(output)?.[1], 'product backend', 20_000);
  });
  after(async () => {
    backend?.kill();
    await server?.stop();
  });

  const ask = async (authorization?: string) => {
    const res = await fetch(backendUrl, { headers: authorization ? { authorization } : {} });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('greets a user by session JWT, verified offline against the JWKS', async () => {
    const user = await registeredUser(server, 'product');
    expect(await ask(`Bearer ${user.token}`)).to.deep.equal({
      status: 200,
      body: { hello: user.id, via: 'jwt', scopes: [] },
    });
  });

  it('greets a user by rst_ key through introspection, with its scopes, until it is revoked', async () => {
    const user = await registeredUser(server, 'product');
    const { data: key } = await createApiKey({
      client: server.as(user.token),
      body: { name: 'shop', scopes: ['orders:read'] },
      throwOnError: true,
    });
    expect(await ask(`Bearer ${key.raw_key}`)).to.deep.equal({
      status: 200,
      body: { hello: user.id, via: 'api_key', scopes: ['orders:read'] },
    });
    await revokeApiKey({ client: server.as(user.token), path: { key_id: key.id }, throwOnError: true });
    expect((await ask(`Bearer ${key.raw_key}`)).status).to.equal(401);
  });

  it('refuses no credential, garbage, an HS256 token and a JWT signed by another key', async () => {
    const user = await registeredUser(server, 'product');
    const now = Math.floor(Date.now() / 1000);
    const sid = (jwt.decode(user.token) as { sid: string }).sid;
    const claims = { sub: user.id, sid, iss: 'rst', aud: 'rst-api', iat: now, exp: now + 600 };
    const stranger = generateKeyPairSync('ed25519').privateKey;
    const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: 'not-ours' }).sign(stranger);
    for (const authorization of [
      undefined,
      'Bearer nonsense',
      `Bearer ${jwt.sign(claims, TEST_ENV.JWT_SECRET!)}`,
      `Bearer ${forged}`,
      `Bearer rst_${'a'.repeat(42)}`,
    ])
      expect((await ask(authorization)).status, authorization).to.equal(401);
  });
});
