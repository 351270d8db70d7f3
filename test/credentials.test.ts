// Credentials that die when they should: a password reset revokes the account's API keys (and its
// mail says so), an account left unverified is deleted after UNVERIFIED_ACCOUNT_TTL_HOURS, and no
// authenticated response may be cached.
import fs from 'node:fs';
import { expect } from 'chai';
import YAML from 'yaml';
import { createApiKey, forgotPassword, getAccount, register, resetPassword } from '../generated/sdk.gen.ts';
import { checkResponse } from './support/contract.ts';
import { DB_LABEL, ON_POSTGRES } from './support/database.ts';
import { tokenFrom } from './support/mail.ts';
import { ROOT, startServer, type TestServer } from './support/server.ts';
import { registeredUser, uniqueUser } from './support/users.ts';
import { waitFor } from './support/wait.ts';

describe(`a password reset revokes every API key (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server.stop();
  });

  it('keys minted before the reset are refused after it; the recovery mail says so', async () => {
    const user = await registeredUser(server, 'rkeys');
    const keys = await Promise.all(
      ['one', 'two'].map(
        async (name) =>
          (await createApiKey({ client: server.as(user.token), body: { name }, throwOnError: true })).data.raw_key,
      ),
    );
    for (const key of keys) expect((await getAccount({ client: server.as(key) })).response!.status).to.equal(200);

    await forgotPassword({ client: server.client, body: { email: user.email }, throwOnError: true });
    const mail = await server.consoleMail(user.email, 2);
    expect(mail.text).to.match(/revokes every API key/);
    const reset = await resetPassword({
      client: server.client,
      body: { token: tokenFrom(mail), new_password: `renewed ${user.password}` },
    });
    expect(reset.response!.status).to.equal(204);

    for (const key of keys) {
      const refused = await getAccount({ client: server.as(key) });
      expect(refused.response!.status).to.equal(401);
      expect(refused.error).to.include({ code: 'unauthorized' });
    }
  });
});

if (ON_POSTGRES) {
  describe('unverified accounts expire after UNVERIFIED_ACCOUNT_TTL_HOURS (PostgreSQL, created_at moved with SQL)', () => {
    let server: TestServer;
    before(async () => {
      server = await startServer({ env: { UNVERIFIED_ACCOUNT_TTL_HOURS: '72', SWEEP_INTERVAL_SECONDS: '1' } });
    });
    after(async () => {
      await server.stop();
    });

    const age = (id: string, hours: number) =>
      server.sql(`update accounts set created_at = now() - make_interval(hours => $2) where id = $1`, [id, hours]);
    const exists = async (id: string) => (await server.sql('select 1 from accounts where id = $1', [id])).length > 0;

    it('deletes an account unverified for 72 hours, freeing its username and email', async () => {
      const squatter = uniqueUser('ttl');
      const created = await register({ client: server.client, body: squatter, throwOnError: true });
      await age(created.data.id, 73);
      await waitFor(async () => !(await exists(created.data.id)), 'the stale account deleted', 15_000);

      const again = await register({
        client: server.client,
        body: { ...squatter, password: `other ${squatter.password}` },
      });
      expect(again.response!.status).to.equal(201);
      expect(again.data!.id).not.to.equal(created.data.id);
    });

    it('keeps a younger unverified account and an old verified one', async () => {
      const young = await register({ client: server.client, body: uniqueUser('ttly'), throwOnError: true });
      await age(young.data.id, 71);
      const verified = await registeredUser(server, 'ttlv');
      await age(verified.id, 24 * 365);
      // A stale account made after them is deleted: the sweep has run over both in the meantime.
      const stale = await register({ client: server.client, body: uniqueUser('ttls'), throwOnError: true });
      await age(stale.data.id, 100);
      await waitFor(async () => !(await exists(stale.data.id)), 'the stale account deleted', 15_000);
      expect(await exists(young.data.id)).to.equal(true);
      expect(await exists(verified.id)).to.equal(true);
      expect((await getAccount({ client: server.as(verified.token) })).response!.status).to.equal(200);
      const taken = await register({ client: server.client, body: { ...uniqueUser('ttly2'), email: verified.email } });
      expect(taken.error).to.include({ code: 'email_taken' });
    });
  });
}

describe(`every authenticated response sends Cache-Control: no-store (${DB_LABEL})`, () => {
  let server: TestServer;
  let user: Awaited<ReturnType<typeof registeredUser>>;
  let apiKey: string;
  before(async () => {
    server = await startServer();
    user = await registeredUser(server, 'nostore');
    apiKey = (await createApiKey({ client: server.as(user.token), body: { name: 'nostore' }, throwOnError: true })).data
      .raw_key;
  });
  after(async () => {
    await server.stop();
  });

  /** Every operation of the contract that names a security scheme, with a request it accepts. */
  const spec = YAML.parse(fs.readFileSync(`${ROOT}/openapi.yaml`, 'utf8')) as {
    paths: Record<string, Record<string, { operationId: string; security?: unknown[]; requestBody?: unknown }>>;
  };
  const BODIES: Record<string, unknown> = { createApiKey: { name: 'cache probe' } };
  const operations = Object.entries(spec.paths).flatMap(([path, methods]) =>
    Object.entries(methods)
      .filter(([, op]) => (op.security ?? []).length > 0)
      .map(([method, op]) => ({ method: method.toUpperCase(), path, op })),
  );

  async function send(method: string, path: string, credential: Record<string, string>, body?: unknown) {
    // A made-up id in the path: 404 where the operation looks one up.
    const url = `${server.url}${path.replace(/\{[^}]+\}/g, '6f1c1d8e-2b7a-4c1e-9f3a-1d2e3f4a5b6c')}`;
    const res = await fetch(url, {
      method,
      headers: { ...credential, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    await checkResponse(method, url, res.clone());
    return res;
  }

  it('covers the authenticated operations of the contract', () => {
    expect(operations.map((o) => o.op.operationId)).to.include.members([
      'createApiKey',
      'listApiKeys',
      'revokeApiKey',
      'getAccount',
      'unlinkGoogle',
    ]);
  });

  it('on success and on every refusal, with a JWT, an API key, a bad credential and none', async () => {
    const statuses = new Set<number>();
    const credentials: Record<string, Record<string, string>> = {
      jwt: { authorization: `Bearer ${user.token}` },
      'API key (Bearer)': { authorization: `Bearer ${apiKey}` },
      'API key (X-API-Key)': { 'x-api-key': apiKey },
      'revoked-looking JWT': { authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl' },
      none: {},
    };
    for (const { method, path, op } of operations) {
      const body = op.requestBody ? (BODIES[op.operationId] ?? {}) : undefined;
      for (const [name, credential] of Object.entries(credentials)) {
        for (const sent of [body, ...(body === undefined ? [] : [{ unexpected: true }])]) {
          const res = await send(method, path, credential, sent);
          statuses.add(res.status);
          expect(res.headers.get('cache-control'), `${op.operationId} with ${name} → ${res.status}`).to.equal(
            'no-store',
          );
        }
      }
    }
    // The refusals the issue names are among them: 401, 403 jwt_required, 404, 409, 400.
    expect([...statuses]).to.include.members([200, 201, 400, 401, 403, 404, 409]);
  });

  it('on a path outside the contract and on a wrong method, when a credential was sent', async () => {
    for (const [method, path] of [
      ['GET', '/v1/me/nothing-here'],
      ['PUT', '/v1/me/account'],
    ] as const) {
      const res = await send(method, path, { authorization: `Bearer ${user.token}` });
      expect(res.status).to.be.oneOf([404, 405]);
      expect(res.headers.get('cache-control'), `${method} ${path}`).to.equal('no-store');
    }
  });
});
