// POST /v1/me/password: re-authentication with the current password, the login's failure limit,
// and the session effects (every other session ends, this one stays, API keys stay).
import { expect } from 'chai';
import { changePassword, createApiKey, getAccount, googleSignIn, login, refreshSession } from '../generated/sdk.gen.ts';
import { DB_LABEL } from './support/database.ts';
import { type GoogleFake, newSub, startServerWithGoogle } from './support/google.ts';
import type { TestServer } from './support/server.ts';
import { registeredUser, signIn, uniqueUser } from './support/users.ts';

describe(`changePassword (${DB_LABEL})`, () => {
  let google: GoogleFake;
  let server: TestServer;
  let stop: () => Promise<void>;
  before(async () => ({ google, server, stop } = await startServerWithGoogle()));
  after(() => stop?.());

  const NEW = 'a brand new passphrase';
  const status = async (token: string) => (await getAccount({ client: server.as(token) })).response!.status;

  it('changes the password: this session stays, every other one ends, API keys stay', async () => {
    const user = await registeredUser(server, 'cpw');
    const second = await login({
      client: server.client,
      body: { username: user.email, password: user.password },
      throwOnError: true,
    });
    const { access_token: other, refresh_token: otherRefresh } = second.data;
    const key = (await createApiKey({ client: server.as(user.token), body: { name: 'ci' }, throwOnError: true })).data;

    const { response } = await changePassword({
      client: server.as(user.token),
      body: { current_password: user.password, new_password: NEW },
    });
    expect(response!.status).to.equal(204);

    expect(await status(user.token)).to.equal(200);
    const refused = await getAccount({ client: server.as(other) });
    expect(refused.response!.status).to.equal(401);
    expect(refused.response!.headers.get('www-authenticate')).to.equal('Bearer error="invalid_token"');
    expect(await status(key.raw_key)).to.equal(200);
    // The other session's refresh token ended with it.
    const renewed = await refreshSession({ client: server.client, body: { refresh_token: otherRefresh } });
    expect(renewed.error).to.include({ code: 'invalid_token', status: 401 });
    const mine = await refreshSession({ client: server.client, body: { refresh_token: user.refreshToken } });
    expect(mine.response!.status).to.equal(200);

    const old = await login({ client: server.client, body: { username: user.username, password: user.password } });
    expect(old.error).to.include({ code: 'invalid_credentials' });
    const fresh = await login({ client: server.client, body: { username: user.username, password: NEW } });
    expect(fresh.response!.status).to.equal(200);
  });

  it('answers 403 reauthentication_failed for a wrong current password, and changes nothing', async () => {
    const user = await registeredUser(server, 'cpwbad');
    const other = await signIn(server, user.username, user.password);
    const { error, response } = await changePassword({
      client: server.as(user.token),
      body: { current_password: `${user.password}x`, new_password: NEW },
    });
    expect(response!.status).to.equal(403);
    expect(error).to.include({ code: 'reauthentication_failed' });
    expect(await status(other)).to.equal(200);
    const old = await login({ client: server.client, body: { username: user.username, password: user.password } });
    expect(old.response!.status).to.equal(200);
  });

  it('answers 400 weak_password by the register policy, after a correct current password', async () => {
    const user = await registeredUser(server, 'cpwweak');
    for (const weak of ['short', 'password123', `my ${user.username} pass`]) {
      const { error, response } = await changePassword({
        client: server.as(user.token),
        body: { current_password: user.password, new_password: weak },
      });
      expect(response!.status, weak).to.equal(400);
      expect(error).to.include({ code: 'weak_password' });
    }
    const still = await login({ client: server.client, body: { username: user.username, password: user.password } });
    expect(still.response!.status).to.equal(200);
  });

  it('answers 409 password_required for an account without a password', async () => {
    const session = await googleSignIn({
      client: server.client,
      body: { credential: google.mint({ sub: newSub(), email: uniqueUser('cpwgo').email }) },
      throwOnError: true,
    });
    const { error, response } = await changePassword({
      client: server.as(session.data.access_token),
      body: { current_password: 'anything at all', new_password: NEW },
    });
    expect(response!.status).to.equal(409);
    expect(error).to.include({ code: 'password_required' });
  });

  it('answers 403 jwt_required to an API key, and 401 without a credential', async () => {
    const user = await registeredUser(server, 'cpwkey');
    const key = (await createApiKey({ client: server.as(user.token), body: { name: 'ci' }, throwOnError: true })).data;
    const body = { current_password: user.password, new_password: NEW };
    const byKey = await changePassword({ client: server.as(key.raw_key), body });
    expect(byKey.response!.status).to.equal(403);
    expect(byKey.error).to.include({ code: 'jwt_required' });
    const none = await changePassword({ client: server.client, body });
    expect(none.response!.status).to.equal(401);
    expect(none.error).to.include({ code: 'unauthorized' });
  });

  it('answers 400 validation_failed for a missing or an unknown field', async () => {
    const user = await registeredUser(server, 'cpwval');
    const missing = await changePassword({
      client: server.as(user.token),
      body: { new_password: NEW } as never,
    });
    expect(missing.error).to.include({ code: 'validation_failed' });
    const extra = await changePassword({
      client: server.as(user.token),
      body: { current_password: user.password, new_password: NEW, username: 'x' } as never,
    });
    expect(extra.error).to.include({ code: 'validation_failed' });
  });

  it("counts wrong current passwords as the login's failures: after 10, login is 429 too", async () => {
    const user = await registeredUser(server, 'cpwlock');
    for (let i = 0; i < 10; i++) {
      const { error } = await changePassword({
        client: server.as(user.token),
        body: { current_password: `wrong ${i}`, new_password: NEW },
      });
      expect(error, `attempt ${i + 1}`).to.include({ code: 'reauthentication_failed' });
    }
    const right = await changePassword({
      client: server.as(user.token),
      body: { current_password: user.password, new_password: NEW },
    });
    expect(right.response!.status).to.equal(429);
    expect(right.error).to.include({ code: 'too_many_requests' });
    expect(Number(right.response!.headers.get('retry-after'))).to.be.at.least(1);
    for (const username of [user.username, user.email]) {
      const locked = await login({ client: server.client, body: { username, password: user.password } });
      expect(locked.response!.status, username).to.equal(429);
    }
  });
});
