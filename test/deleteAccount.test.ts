// DELETE /v1/me: re-authentication, then the account and everything that names it gone in one
// transaction, its credentials refused at once (also on a second instance), its username and email
// free again, a goodbye mail, and — read back from every table — nothing of it left.
import { expect } from 'chai';
import {
  changeEmail,
  createApiKey,
  deleteAccount,
  forgotPassword,
  getAccount,
  googleSignIn,
  linkGoogle,
  login,
  register,
  verifyEmailChange,
} from '../generated/sdk.gen.ts';
import { limitKeysFor } from '../lib/limits.ts';
import { DB_LABEL, ON_POSTGRES } from './support/database.ts';
import { type GoogleFake, newSub, startServerWithGoogle } from './support/google.ts';
import { changeCodeFrom } from './support/mail.ts';
import { TEST_ENV, type TestServer, twoInstances } from './support/server.ts';
import { refusedWithin } from './support/requests.ts';
import { registeredUser, signIn, uniqueUser } from './support/users.ts';

/** The counter keys the servers under test make (they all run on TEST_ENV's JWT_SECRET). */
const limitKeys = limitKeysFor(TEST_ENV.JWT_SECRET!);

const GOODBYE = 'Your rst auth account is deleted';

describe(`deleteAccount (${DB_LABEL})`, () => {
  let google: GoogleFake;
  let server: TestServer;
  let stop: () => Promise<void>;
  before(async () => ({ google, server, stop } = await startServerWithGoogle()));
  after(() => stop?.());

  const keyOf = async (token: string) =>
    (await createApiKey({ client: server.as(token), body: { name: 'ci' }, throwOnError: true })).data.raw_key;

  it('deletes the account: every credential refused, the username and email free, a goodbye mail', async () => {
    const user = await registeredUser(server, 'del');
    const other = await signIn(server, user.email, user.password);
    const key = await keyOf(user.token);

    const { response } = await deleteAccount({ client: server.as(user.token), body: { password: user.password } });
    expect(response!.status).to.equal(204);

    for (const credential of [user.token, other, key]) {
      const refused = await getAccount({ client: server.as(credential) });
      expect(refused.response!.status).to.equal(401);
      expect(refused.response!.headers.get('www-authenticate')).to.equal('Bearer error="invalid_token"');
    }
    const gone = await login({ client: server.client, body: { username: user.username, password: user.password } });
    expect(gone.error).to.include({ code: 'invalid_credentials' });

    const goodbye = await server.consoleMail(user.email, 2);
    expect(goodbye.subject).to.equal(GOODBYE);
    expect(goodbye.text).to.include(`Hello ${user.username},`);

    const again = await register({
      client: server.client,
      body: { username: user.username.toUpperCase(), email: user.email, password: 'a fresh start passphrase' },
    });
    expect(again.response!.status).to.equal(201);
    expect(again.data!.id).to.not.equal(user.id);
  });

  it('deletes a Google-only account with a fresh Google credential of its subject', async () => {
    const identity = { sub: newSub(), email: uniqueUser('delgo').email };
    const session = await googleSignIn({
      client: server.client,
      body: { credential: google.mint(identity) },
      throwOnError: true,
    });
    const token = session.data.access_token;
    const stale = await deleteAccount({
      client: server.as(token),
      body: { google_credential: google.mint(identity, { claims: { iat: Math.floor(Date.now() / 1000) - 700 } }) },
    });
    expect(stale.error).to.include({ code: 'reauthentication_failed' });
    const { response } = await deleteAccount({
      client: server.as(token),
      body: { google_credential: google.mint(identity) },
    });
    expect(response!.status).to.equal(204);
    expect((await getAccount({ client: server.as(token) })).response!.status).to.equal(401);
    // The Google account is free too: signing in again makes a new account.
    const anew = await googleSignIn({ client: server.client, body: { credential: google.mint(identity) } });
    expect(anew.data!.account_created).to.equal(true);
  });

  it('answers 403 reauthentication_failed for a wrong or missing password and keeps the account', async () => {
    const user = await registeredUser(server, 'delbad');
    for (const body of [
      { password: 'not the password' },
      {},
      { google_credential: google.mint({ sub: newSub(), email: user.email }) },
    ]) {
      const { error, response } = await deleteAccount({ client: server.as(user.token), body });
      expect(response!.status).to.equal(403);
      expect(error).to.include({ code: 'reauthentication_failed' });
    }
    expect((await getAccount({ client: server.as(user.token) })).response!.status).to.equal(200);
  });

  it('locks after 10 failed re-authentications like login: the 11th is 429 even with the password', async () => {
    const user = await registeredUser(server, 'dellock');
    for (let i = 0; i < 10; i++)
      await deleteAccount({ client: server.as(user.token), body: { password: `wrong ${i}` } });
    const { error, response } = await deleteAccount({
      client: server.as(user.token),
      body: { password: user.password },
    });
    expect(response!.status).to.equal(429);
    expect(error).to.include({ code: 'too_many_requests' });
    expect((await getAccount({ client: server.as(user.token) })).response!.status).to.equal(200);
  });

  it('answers 403 jwt_required to an API key, 401 without a credential, 400 for an unknown field', async () => {
    const user = await registeredUser(server, 'delkey');
    const key = await keyOf(user.token);
    const byKey = await deleteAccount({ client: server.as(key), body: { password: user.password } });
    expect(byKey.response!.status).to.equal(403);
    expect(byKey.error).to.include({ code: 'jwt_required' });
    expect(
      (await deleteAccount({ client: server.client, body: { password: user.password } })).response!.status,
    ).to.equal(401);
    const extra = await deleteAccount({
      client: server.as(user.token),
      body: { password: user.password, confirm: true } as never,
    });
    expect(extra.error).to.include({ code: 'validation_failed' });
    expect((await getAccount({ client: server.as(user.token) })).response!.status).to.equal(200);
  });

  it('refuses the key after a delete racing with its use answers, and never answers 500', async () => {
    const user = await registeredUser(server, 'delrace');
    const key = await keyOf(user.token);
    const uses = Array.from({ length: 40 }, () => getAccount({ client: server.as(key) }));
    const deleted = deleteAccount({ client: server.as(user.token), body: { password: user.password } });
    const statuses = (await Promise.all(uses)).map((r) => r.response!.status);
    expect((await deleted).response!.status).to.equal(204);
    // Each use was answered as the account stood when it was read: the account, or refused.
    expect(
      statuses.every((s) => s === 200 || s === 401),
      statuses.join(),
    ).to.equal(true);
    const after = await Promise.all(Array.from({ length: 5 }, () => getAccount({ client: server.as(key) })));
    expect(after.map((r) => r.response!.status)).to.deep.equal([401, 401, 401, 401, 401]);
  });

  it('lets exactly one of two concurrent deletes win; the other is refused as unauthenticated', async () => {
    const user = await registeredUser(server, 'deltwice');
    const results = await Promise.all([
      deleteAccount({ client: server.as(user.token), body: { password: user.password } }),
      deleteAccount({ client: server.as(user.token), body: { password: user.password } }),
    ]);
    expect(results.map((r) => r.response!.status).sort()).to.deep.equal([204, 401]);
  });
});

describe(`deleteAccount leaves nothing of the account in any table (${DB_LABEL})`, () => {
  let google: GoogleFake;
  let server: TestServer;
  let stop: () => Promise<void>;
  before(async () => ({ google, server, stop } = await startServerWithGoogle()));
  after(() => stop?.());

  it('finds neither its id, username, emails, Google subject nor its counters anywhere', async () => {
    const user = await registeredUser(server, 'deltrace');
    const bystander = await registeredUser(server, 'delkeep');
    // Traces of every kind: a second session, an API key, a Google link, a completed email change
    // (the notice to the old address), a pending one (a code and a mail to a third address), a
    // recovery token and its mail, failed sign-ins counted by username and by email.
    await signIn(server, user.username, user.password);
    await createApiKey({ client: server.as(user.token), body: { name: 'ci' }, throwOnError: true });
    const sub = newSub();
    await linkGoogle({
      client: server.as(user.token),
      body: { credential: google.mint({ sub, email: uniqueUser('g').email }), password: user.password },
      throwOnError: true,
    });
    const moved = uniqueUser('delmoved').email;
    await changeEmail({
      client: server.as(user.token),
      body: { new_email: moved, password: user.password },
      throwOnError: true,
    });
    await verifyEmailChange({
      client: server.as(user.token),
      body: { code: changeCodeFrom(await server.consoleMail(moved)) },
      throwOnError: true,
    });
    await server.consoleMail(user.email, 2); // the notice to the old address
    const pending = uniqueUser('delpending').email;
    await changeEmail({
      client: server.as(user.token),
      body: { new_email: pending, password: user.password },
      throwOnError: true,
    });
    await server.consoleMail(pending);
    await forgotPassword({ client: server.client, body: { email: moved }, throwOnError: true });
    await server.consoleMail(moved, 2);
    for (const username of [user.username, moved])
      await login({ client: server.client, body: { username, password: 'a wrong password' } });

    await deleteAccount({ client: server.as(user.token), body: { password: user.password }, throwOnError: true });
    // Once the goodbye is sent, its row forgets the address too.
    expect((await server.consoleMail(moved, 3)).subject).to.equal(GOODBYE);
    await server.waitForLog((l) => l.msg === 'mail sent' && l.kind === 'account_deleted');

    // Every row of every table the schema has (information_schema.tables), as text.
    const dump = (await server.dumpDatabase()).toLowerCase();
    const traces = {
      id: user.id,
      username: user.username,
      'first email': user.email,
      'changed email': moved,
      'pending email': pending,
      'Google subject': sub,
      'login counter (username)': limitKeys.of('login-id', user.username),
      'login counter (first email)': limitKeys.of('login-id', user.email),
      'login counter (email)': limitKeys.of('login-id', moved),
    };
    for (const [what, value] of Object.entries(traces))
      expect(dump.includes(value.toLowerCase()), what).to.equal(false);
    // The dump is the real thing: the account left alone is all there.
    expect(dump).to.include(bystander.id);
    expect(dump).to.include(bystander.email);
  });
});

if (ON_POSTGRES) {
  describe('deleteAccount on two instances on one PostgreSQL', () => {
    let a: TestServer;
    let b: TestServer;
    twoInstances({}, (first, second) => {
      a = first;
      b = second;
    });

    it('refuses the JWT and the API key on the other instance within 100 ms', async () => {
      const user = await registeredUser(a, 'del2');
      const key = (await createApiKey({ client: a.as(user.token), body: { name: 'ci' }, throwOnError: true })).data
        .raw_key;
      const onB = await signIn(b, user.username, user.password);
      for (const credential of [user.token, key, onB])
        expect((await getAccount({ client: b.as(credential) })).response!.status).to.equal(200);

      await deleteAccount({ client: a.as(user.token), body: { password: user.password }, throwOnError: true });
      for (const credential of [user.token, key, onB]) {
        await refusedWithin(b, credential);
        const { error } = await getAccount({ client: b.as(credential) });
        expect(error).to.include({ code: 'unauthorized' });
      }
      const rows = await a.sql<{ n: string }>('select count(*) as n from accounts where id = $1', [user.id]);
      expect(Number(rows[0]!.n)).to.equal(0);
    });
  });
}
