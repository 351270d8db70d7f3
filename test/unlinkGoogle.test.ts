import { expect } from 'chai';
import { createApiKey, getAccount, googleSignIn, login, unlinkGoogle } from '../generated/sdk.gen.ts';
import { DB_LABEL } from './support/database.ts';
import { type GoogleFake, newSub, startGoogleFake } from './support/google.ts';
import { startServer, type TestServer } from './support/server.ts';
import { registeredUser, uniqueUser } from './support/users.ts';

describe(`unlinkGoogle (${DB_LABEL})`, () => {
  let google: GoogleFake;
  let server: TestServer;
  before(async () => {
    google = await startGoogleFake();
    server = await startServer({ env: { GOOGLE_CLIENT_ID: google.audience, GOOGLE_CERTS_URL: google.certsUrl } });
  });
  after(async () => {
    await server?.stop();
    await google?.stop();
  });

  const signIn = async (sub: string, email: string) =>
    (
      await googleSignIn({
        client: server.client,
        // hd: example.test is a Workspace domain here, so Google may link by email (API.md, Rules).
        body: { credential: google.mint({ sub, email }, { claims: { hd: 'example.test' } }) },
        throwOnError: true,
      })
    ).data;

  /** A verified password account that has also signed in with Google. */
  const linkedUser = async () => {
    const user = await registeredUser(server, 'unl');
    const sub = newSub();
    const session = await signIn(sub, user.email);
    expect(session.account_created).to.equal(false);
    return { ...user, sub };
  };

  it('unlinks Google from an account with a password and answers the account after the change', async () => {
    const user = await linkedUser();
    const { data, response } = await unlinkGoogle({ client: server.as(user.token) });
    expect(response!.status).to.equal(200);
    expect(data).to.include({
      id: user.id,
      username: user.username,
      email: user.email,
      google_linked: false,
      has_password: true,
      can_unlink_google: false,
    });
    expect(data!.available_sign_in_methods).to.deep.equal(['password']);
    const after = await getAccount({ client: server.as(user.token), throwOnError: true });
    expect(after.data).to.deep.equal(data);
    // The password still signs in.
    const again = await login({ client: server.client, body: { username: user.email, password: user.password } });
    expect(again.response!.status).to.equal(200);
  });

  it('accepts an API key as the owner credential', async () => {
    const user = await linkedUser();
    const key = (await createApiKey({ client: server.as(user.token), body: { name: 'cli' }, throwOnError: true })).data
      .raw_key;
    const { data, response } = await unlinkGoogle({ client: server.as(key) });
    expect(response!.status).to.equal(200);
    expect(data).to.include({ id: user.id, google_linked: false, has_password: true });
  });

  it('answers 409 google_not_linked the second time, and for an account never linked', async () => {
    const user = await linkedUser();
    await unlinkGoogle({ client: server.as(user.token), throwOnError: true });
    const second = await unlinkGoogle({ client: server.as(user.token) });
    expect(second.response!.status).to.equal(409);
    expect(second.error).to.include({ code: 'google_not_linked' });

    const never = await registeredUser(server, 'unlnever');
    const { error, response } = await unlinkGoogle({ client: server.as(never.token) });
    expect(response!.status).to.equal(409);
    expect(error).to.include({ code: 'google_not_linked' });
  });

  it('refuses with 409 password_required when Google is the only way in, and changes nothing', async () => {
    const session = await signIn(newSub(), uniqueUser('unlgo').email);
    expect(session.account_created).to.equal(true);
    const { error, response } = await unlinkGoogle({ client: server.as(session.access_token) });
    expect(response!.status).to.equal(409);
    expect(error).to.include({ code: 'password_required' });
    const account = (await getAccount({ client: server.as(session.access_token), throwOnError: true })).data;
    expect(account).to.include({ google_linked: true, has_password: false, can_unlink_google: false });
    expect(account.available_sign_in_methods).to.deep.equal(['google']);
  });

  it('lets exactly one of 2 concurrent unlinks win', async () => {
    const user = await linkedUser();
    const results = await Promise.all([
      unlinkGoogle({ client: server.as(user.token) }),
      unlinkGoogle({ client: server.as(user.token) }),
    ]);
    const statuses = results.map((r) => r.response!.status).sort();
    expect(statuses).to.deep.equal([200, 409]);
    expect(results.find((r) => r.response!.status === 409)!.error).to.include({ code: 'google_not_linked' });
  });

  it('lets the same Google account link again after an unlink (by the verified email)', async () => {
    const user = await linkedUser();
    await unlinkGoogle({ client: server.as(user.token), throwOnError: true });
    const session = await signIn(user.sub, user.email);
    expect(session.account_created).to.equal(false);
    const account = (await getAccount({ client: server.as(session.access_token), throwOnError: true })).data;
    expect(account).to.include({ id: user.id, google_linked: true, has_password: true, can_unlink_google: true });
  });

  it('answers 401 without a credential, and with a refused one', async () => {
    const none = await unlinkGoogle({ client: server.client });
    expect(none.response!.status).to.equal(401);
    expect(none.error).to.include({ code: 'unauthorized' });
    const bad = await unlinkGoogle({ client: server.as('not.a.jwt') });
    expect(bad.response!.status).to.equal(401);
    expect(bad.error).to.include({ code: 'unauthorized' });
  });
});
