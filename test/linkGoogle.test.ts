// POST /v1/me/google/link: a signed-in owner who proves the password links any Google account,
// whatever its email; a Google subject belongs to one account only.
import { expect } from 'chai';
import { createApiKey, getAccount, googleSignIn, linkGoogle } from '../generated/sdk.gen.ts';
import { DB_LABEL } from './support/database.ts';
import { type GoogleFake, newSub, startServerWithGoogle } from './support/google.ts';
import { startServer, type TestServer } from './support/server.ts';
import { registeredUser, uniqueUser } from './support/users.ts';

describe(`linkGoogle (${DB_LABEL})`, () => {
  let google: GoogleFake;
  let server: TestServer;
  let stop: () => Promise<void>;
  before(async () => ({ google, server, stop } = await startServerWithGoogle()));
  after(() => stop?.());

  const gmail = () => ({ sub: newSub(), email: `${uniqueUser('g').username.replace(/_/g, '.')}@gmail.com` });

  it('links a Google account with another email; Google sign-in then opens this account', async () => {
    const user = await registeredUser(server, 'lnk');
    const identity = gmail();
    const { data, response } = await linkGoogle({
      client: server.as(user.token),
      body: { credential: google.mint(identity, { claims: { nonce: 'n-1' } }), nonce: 'n-1', password: user.password },
    });
    expect(response!.status).to.equal(200);
    expect(data).to.include({ id: user.id, email: user.email, google_linked: true, can_unlink_google: true });
    expect(data!.available_sign_in_methods).to.deep.equal(['password', 'google']);

    const session = await googleSignIn({
      client: server.client,
      body: { credential: google.mint(identity) },
      throwOnError: true,
    });
    expect(session.data.account_created).to.equal(false);
    const account = await getAccount({ client: server.as(session.data.access_token), throwOnError: true });
    expect(account.data.id).to.equal(user.id);
  });

  it('answers 409 google_already_linked when the account has a link', async () => {
    const user = await registeredUser(server, 'lnktwice');
    await linkGoogle({
      client: server.as(user.token),
      body: { credential: google.mint(gmail()), password: user.password },
      throwOnError: true,
    });
    const { error, response } = await linkGoogle({
      client: server.as(user.token),
      body: { credential: google.mint(gmail()), password: user.password },
    });
    expect(response!.status).to.equal(409);
    expect(error).to.include({ code: 'google_already_linked' });
  });

  it('answers 409 google_account_in_use for a subject linked to another account', async () => {
    const identity = gmail();
    await googleSignIn({ client: server.client, body: { credential: google.mint(identity) }, throwOnError: true });
    const user = await registeredUser(server, 'lnkused');
    const { error, response } = await linkGoogle({
      client: server.as(user.token),
      body: { credential: google.mint(identity), password: user.password },
    });
    expect(response!.status).to.equal(409);
    expect(error).to.include({ code: 'google_account_in_use' });
    expect((await getAccount({ client: server.as(user.token), throwOnError: true })).data.google_linked).to.equal(
      false,
    );
  });

  it('lets exactly one of two accounts racing for one Google subject link it', async () => {
    const [a, b] = [await registeredUser(server, 'lnkra'), await registeredUser(server, 'lnkrb')];
    const identity = gmail();
    const results = await Promise.all(
      [a, b].map((u) =>
        linkGoogle({ client: server.as(u.token), body: { credential: google.mint(identity), password: u.password } }),
      ),
    );
    expect(results.map((r) => r.response!.status).sort()).to.deep.equal([200, 409]);
    expect(results.find((r) => r.response!.status === 409)!.error).to.include({ code: 'google_account_in_use' });
  });

  it('answers 401 invalid_google_credential for a refused credential or a wrong nonce', async () => {
    const user = await registeredUser(server, 'lnkbad');
    const identity = gmail();
    for (const body of [
      { credential: 'not-a-token', password: user.password },
      { credential: google.mint(identity, { claims: { aud: 'someone-else' } }), password: user.password },
      { credential: google.mint(identity, { claims: { email_verified: false } }), password: user.password },
      { credential: google.mint(identity, { claims: { nonce: 'a' } }), nonce: 'b', password: user.password },
    ]) {
      const { error, response } = await linkGoogle({ client: server.as(user.token), body });
      expect(response!.status).to.equal(401);
      expect(error).to.include({ code: 'invalid_google_credential' });
    }
    expect((await getAccount({ client: server.as(user.token), throwOnError: true })).data.google_linked).to.equal(
      false,
    );
  });

  it('answers 403 reauthentication_failed for a wrong password, before looking at the credential', async () => {
    const user = await registeredUser(server, 'lnkpw');
    for (const credential of [google.mint(gmail()), 'not-a-token']) {
      const { error, response } = await linkGoogle({
        client: server.as(user.token),
        body: { credential, password: 'not the password' },
      });
      expect(response!.status).to.equal(403);
      expect(error).to.include({ code: 'reauthentication_failed' });
    }
  });

  it('answers 400 without a password, 403 jwt_required to an API key, 401 without a credential', async () => {
    const user = await registeredUser(server, 'lnkkey');
    const noPassword = await linkGoogle({
      client: server.as(user.token),
      body: { credential: google.mint(gmail()) } as never,
    });
    expect(noPassword.error).to.include({ code: 'validation_failed' });
    const key = (await createApiKey({ client: server.as(user.token), body: { name: 'ci' }, throwOnError: true })).data;
    const body = { credential: google.mint(gmail()), password: user.password };
    const byKey = await linkGoogle({ client: server.as(key.raw_key), body });
    expect(byKey.response!.status).to.equal(403);
    expect(byKey.error).to.include({ code: 'jwt_required' });
    expect((await linkGoogle({ client: server.client, body })).response!.status).to.equal(401);
  });
});

describe(`linkGoogle without GOOGLE_CLIENT_ID (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  it('answers 503 google_not_configured', async () => {
    const user = await registeredUser(server, 'lnkoff');
    const { error, response } = await linkGoogle({
      client: server.as(user.token),
      body: { credential: 'eyJ.a.b', password: user.password },
    });
    expect(response!.status).to.equal(503);
    expect(error).to.include({ code: 'google_not_configured' });
  });
});
