// API keys with scopes and an expiry (API.md 1.1, operations 20 and 21): scopes are stored and
// returned, never interpreted; an expired key is refused at once, like a revoked one, and is no
// longer listed, counted or revocable. Expiry is moved with SQL, so those suites need PostgreSQL.
import { expect } from 'chai';
import { createApiKey, getAccount, listApiKeys, revokeApiKey } from '../generated/sdk.gen.ts';
import { DB_LABEL, ON_POSTGRES } from './support/database.ts';
import { startServer, type TestServer } from './support/server.ts';
import { registeredUser } from './support/users.ts';

describe(`API key scopes and expiry (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  it('keeps the scopes in the order given and sets expires_at from expires_in_days', async () => {
    const user = await registeredUser(server, 'scope');
    const scopes = ['projects:read', 'projects:write', 'x', `a${'b'.repeat(63)}`, 'files.v2_upload-1'];
    const { data: key, response } = await createApiKey({
      client: server.as(user.token),
      body: { name: 'ci', scopes, expires_in_days: 365 },
      throwOnError: true,
    });
    expect(response.status).to.equal(201);
    expect(key.scopes).to.deep.equal(scopes);
    const days = (new Date(key.expires_at!).getTime() - new Date(key.created_at).getTime()) / 86_400_000;
    expect(days).to.be.closeTo(365, 0.001);
    const { data: list } = await listApiKeys({ client: server.as(user.token), throwOnError: true });
    expect(list.items).to.have.length(1);
    expect(list.items[0]).to.include({ id: key.id, expires_at: key.expires_at });
    expect(list.items[0]!.scopes).to.deep.equal(scopes);
    // The key works as before: rst does not interpret scopes.
    expect((await getAccount({ client: server.as(key.raw_key) })).response!.status).to.equal(200);
  });

  it('defaults to no scopes and no expiry, and takes 20 scopes and 1 day', async () => {
    const user = await registeredUser(server, 'scope');
    const { data: plain } = await createApiKey({
      client: server.as(user.token),
      body: { name: 'p' },
      throwOnError: true,
    });
    expect(plain).to.include({ expires_at: null });
    expect(plain.scopes).to.deep.equal([]);
    const twenty = Array.from({ length: 20 }, (_, i) => `s${i}`);
    const { data: full } = await createApiKey({
      client: server.as(user.token),
      body: { name: 'f', scopes: twenty, expires_in_days: 1 },
      throwOnError: true,
    });
    expect(full.scopes).to.deep.equal(twenty);
    expect(new Date(full.expires_at!).getTime() - new Date(full.created_at).getTime()).to.equal(86_400_000);
  });

  it('refuses bad scopes and expiries with 400 validation_failed, naming the field', async () => {
    const user = await registeredUser(server, 'scope');
    const bad: [string, Record<string, unknown>, string][] = [
      ['21 scopes', { scopes: Array.from({ length: 21 }, (_, i) => `s${i}`) }, '/body/scopes'],
      ['a repeated scope', { scopes: ['a', 'b', 'a'] }, '/body/scopes'],
      ['an upper-case scope', { scopes: ['Projects'] }, '/body/scopes/0'],
      ['a scope starting with a digit', { scopes: ['1up'] }, '/body/scopes/0'],
      ['a scope of 65 characters', { scopes: [`a${'b'.repeat(64)}`] }, '/body/scopes/0'],
      ['an empty scope', { scopes: [''] }, '/body/scopes/0'],
      ['a scope with a space', { scopes: ['read all'] }, '/body/scopes/0'],
      ['scopes as a string', { scopes: 'read' }, '/body/scopes'],
      ['0 days', { expires_in_days: 0 }, '/body/expires_in_days'],
      ['366 days', { expires_in_days: 366 }, '/body/expires_in_days'],
      ['1.5 days', { expires_in_days: 1.5 }, '/body/expires_in_days'],
      ['days as a string', { expires_in_days: '30' }, '/body/expires_in_days'],
    ];
    for (const [what, extra, path] of bad) {
      const { response, error } = await createApiKey({
        client: server.as(user.token),
        body: { name: 'bad', ...extra } as never,
      });
      expect(response!.status, what).to.equal(400);
      expect(error, what).to.include({ code: 'validation_failed' });
      expect(
        (error as { errors: { path: string }[] }).errors.map((e) => e.path),
        what,
      ).to.include(path);
    }
    const { data } = await listApiKeys({ client: server.as(user.token), throwOnError: true });
    expect(data.items).to.deep.equal([]);
  });

  if (ON_POSTGRES) {
    describe('expiry (expires_at moved with SQL)', () => {
      const expire = (id: string) =>
        server.sql(`update api_keys set expires_at = now() - interval '1 second' where id = $1`, [id]);

      it('refuses an expired key at once, like a revoked one, and no longer lists it', async () => {
        const user = await registeredUser(server, 'expiry');
        const { data: key } = await createApiKey({
          client: server.as(user.token),
          body: { name: 'short', expires_in_days: 7 },
          throwOnError: true,
        });
        const { data: other } = await createApiKey({
          client: server.as(user.token),
          body: { name: 'other' },
          throwOnError: true,
        });
        expect((await getAccount({ client: server.as(key.raw_key) })).response!.status).to.equal(200);
        await expire(key.id);
        const read = await getAccount({ client: server.as(key.raw_key) });
        expect(read.response!.status).to.equal(401);
        expect(read.response!.headers.get('www-authenticate')).to.equal('Bearer error="invalid_token"');
        const { data: list } = await listApiKeys({ client: server.as(user.token), throwOnError: true });
        expect(list.items.map((k) => k.id)).to.deep.equal([other.id]);
        // Not revocable either: it is gone, as a revoked key is.
        const revoke = await revokeApiKey({ client: server.as(user.token), path: { key_id: key.id } });
        expect(revoke.response!.status).to.equal(404);
        expect(revoke.error).to.include({ code: 'api_key_not_found' });
        expect((await getAccount({ client: server.as(other.raw_key) })).response!.status).to.equal(200);
      });

      it('accepts a key until its last second, by the database clock', async () => {
        const user = await registeredUser(server, 'expiry');
        const { data: key } = await createApiKey({
          client: server.as(user.token),
          body: { name: 'edge', expires_in_days: 1 },
          throwOnError: true,
        });
        await server.sql(`update api_keys set expires_at = now() + interval '3 seconds' where id = $1`, [key.id]);
        expect((await getAccount({ client: server.as(key.raw_key) })).response!.status).to.equal(200);
        await new Promise((r) => setTimeout(r, 3200));
        expect((await getAccount({ client: server.as(key.raw_key) })).response!.status).to.equal(401);
      });

      it('frees the slot of an expired key under the limit of 25', async function () {
        this.timeout(30_000);
        const user = await registeredUser(server, 'expiry');
        const ids: string[] = [];
        for (let i = 0; i < 25; i++) {
          const { data } = await createApiKey({
            client: server.as(user.token),
            body: { name: `k${i}` },
            throwOnError: true,
          });
          ids.push(data.id);
        }
        const full = await createApiKey({ client: server.as(user.token), body: { name: 'one more' } });
        expect(full.response!.status).to.equal(409);
        await expire(ids[0]!);
        const freed = await createApiKey({ client: server.as(user.token), body: { name: 'one more' } });
        expect(freed.response!.status).to.equal(201);
      });
    });
  }
});
