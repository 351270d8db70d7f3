// POST /v1/me/email and POST /v1/me/email/verify: re-authentication, the code to the new address
// under the verification code rules, the notice to the old one, the session effects, and the
// unique email deciding races.
import { expect } from 'chai';
import {
  changeEmail,
  createApiKey,
  forgotPassword,
  getAccount,
  googleSignIn,
  login,
  register,
  resetPassword,
  verifyEmail,
  verifyEmailChange,
} from '../generated/sdk.gen.ts';
import { DB_LABEL } from './support/database.ts';
import { type GoogleFake, newSub, startServerWithGoogle } from './support/google.ts';
import { changeCodeFrom, consoleMailsIn, TIGHT_EMAIL_LIMITS, tokenFrom } from './support/mail.ts';
import { startServer, type TestServer } from './support/server.ts';
import { registeredUser, signIn, uniqueUser } from './support/users.ts';
import { waitFor } from './support/wait.ts';

describe(`changeEmail and verifyEmailChange (${DB_LABEL})`, () => {
  let google: GoogleFake;
  let server: TestServer;
  let stop: () => Promise<void>;
  before(async () => ({ google, server, stop } = await startServerWithGoogle()));
  after(() => stop?.());

  const newAddress = () => uniqueUser('moved').email;
  /** The code mailed to `address` for this account (several accounts may ask for one address). */
  const codeFor = async (address: string, username: string) =>
    changeCodeFrom(
      await waitFor(
        () => consoleMailsIn(server.output(), address).find((m) => m.text.includes(`Hello ${username},`)),
        `email change code to ${address} for ${username}`,
      ),
    );
  const start = async (user: { token: string; password: string }, address: string) =>
    changeEmail({ client: server.as(user.token), body: { new_email: address, password: user.password } });

  it('moves the account to the new, verified address; the old one gets a notice; other sessions end', async () => {
    const user = await registeredUser(server, 'chm');
    const other = await signIn(server, user.username, user.password);
    const key = (await createApiKey({ client: server.as(user.token), body: { name: 'ci' }, throwOnError: true })).data;
    const address = newAddress();

    const started = await start(user, address.toUpperCase());
    expect(started.response!.status).to.equal(202);
    expect(started.data!.message).to.match(/code/);
    const mail = await server.consoleMail(address);
    expect(mail.subject).to.equal('Confirm your new rst auth email');
    // Nothing changes before the code is confirmed.
    expect((await getAccount({ client: server.as(other), throwOnError: true })).data.email).to.equal(user.email);

    const { data, response } = await verifyEmailChange({
      client: server.as(user.token),
      body: { code: changeCodeFrom(mail) },
    });
    expect(response!.status).to.equal(200);
    expect(data).to.include({ id: user.id, email: address, email_verified: true, username: user.username });

    const notice = await server.consoleMail(user.email, 2); // after the registration's code
    expect(notice.subject).to.equal('Your rst auth email was changed');
    expect(notice.text).to.include(address);

    expect((await getAccount({ client: server.as(user.token) })).response!.status).to.equal(200);
    expect((await getAccount({ client: server.as(other) })).response!.status).to.equal(401);
    expect((await getAccount({ client: server.as(key.raw_key) })).response!.status).to.equal(200);

    const byNew = await login({ client: server.client, body: { username: address, password: user.password } });
    expect(byNew.response!.status).to.equal(200);
    const byOld = await login({ client: server.client, body: { username: user.email, password: user.password } });
    expect(byOld.error).to.include({ code: 'invalid_credentials' });
    // The old address is free for a new account.
    const reused = await register({
      client: server.client,
      body: { username: uniqueUser('reuse').username, email: user.email, password: 'another long passphrase' },
    });
    expect(reused.response!.status).to.equal(201);
  });

  it('makes recovery links mailed to the old address useless', async () => {
    const user = await registeredUser(server, 'chmrec');
    await forgotPassword({ client: server.client, body: { email: user.email }, throwOnError: true });
    const token = tokenFrom(await server.consoleMail(user.email, 2));
    const address = newAddress();
    await start(user, address);
    await verifyEmailChange({
      client: server.as(user.token),
      body: { code: await codeFor(address, user.username) },
      throwOnError: true,
    });
    const { error } = await resetPassword({
      client: server.client,
      body: { token, new_password: 'the thief sets this one' },
    });
    expect(error).to.include({ code: 'invalid_token' });
  });

  it('answers 403 reauthentication_failed for a wrong or missing password, and mails nothing', async () => {
    const user = await registeredUser(server, 'chmbad');
    const address = newAddress();
    const wrong = await changeEmail({
      client: server.as(user.token),
      body: { new_email: address, password: 'not the password' },
    });
    expect(wrong.response!.status).to.equal(403);
    expect(wrong.error).to.include({ code: 'reauthentication_failed' });
    const missing = await changeEmail({ client: server.as(user.token), body: { new_email: address } });
    expect(missing.error).to.include({ code: 'reauthentication_failed' });
    const google = await changeEmail({
      client: server.as(user.token),
      body: { new_email: address, google_credential: 'eyJ.not.atoken' },
    });
    expect(google.error).to.include({ code: 'reauthentication_failed' });
    await server.consoleMail(user.email); // the registration's, already there: the output is current
    expect(consoleMailsIn(server.output(), address)).to.deep.equal([]);
  });

  it("answers 409 email_taken for another account's address and for its own", async () => {
    const user = await registeredUser(server, 'chmtak');
    const owner = await registeredUser(server, 'chmown');
    const taken = await start(user, owner.email.toUpperCase());
    expect(taken.response!.status).to.equal(409);
    expect(taken.error).to.include({ code: 'email_taken' });
    const own = await start(user, user.email);
    expect(own.error).to.include({ code: 'email_taken' });
  });

  it('answers 400 invalid_code for a wrong code, no pending change, a used code, and after 5 tries', async () => {
    const user = await registeredUser(server, 'chmcode');
    const none = await verifyEmailChange({ client: server.as(user.token), body: { code: '123456' } });
    expect(none.response!.status).to.equal(400);
    expect(none.error).to.include({ code: 'invalid_code' });

    const address = newAddress();
    await start(user, address);
    const code = await codeFor(address, user.username);
    const wrong = code === '000000' ? '000001' : '000000';
    for (let i = 0; i < 5; i++) {
      const { error } = await verifyEmailChange({ client: server.as(user.token), body: { code: wrong } });
      expect(error).to.include({ code: 'invalid_code' });
    }
    const late = await verifyEmailChange({ client: server.as(user.token), body: { code } });
    expect(late.error, 'the right code after 5 wrong tries').to.include({ code: 'invalid_code' });

    const again = newAddress();
    await start(user, again);
    const fresh = await codeFor(again, user.username);
    await verifyEmailChange({ client: server.as(user.token), body: { code: fresh }, throwOnError: true });
    const reused = await verifyEmailChange({ client: server.as(user.token), body: { code: fresh } });
    expect(reused.error).to.include({ code: 'invalid_code' });
  });

  it('replaces a pending change with a newer one, and never accepts its code at verify-email', async () => {
    const user = await registeredUser(server, 'chmrep');
    const first = newAddress();
    await start(user, first);
    const firstCode = await codeFor(first, user.username);
    const second = newAddress();
    await start(user, second);
    const secondCode = await codeFor(second, user.username);
    if (firstCode !== secondCode) {
      const old = await verifyEmailChange({ client: server.as(user.token), body: { code: firstCode } });
      expect(old.error).to.include({ code: 'invalid_code' });
    }
    const pub = await verifyEmail({ client: server.client, body: { email: second, code: secondCode } });
    expect(pub.error).to.include({ code: 'invalid_code' });
    const { data } = await verifyEmailChange({
      client: server.as(user.token),
      body: { code: secondCode },
      throwOnError: true,
    });
    expect(data.email).to.equal(second);
  });

  it('lets exactly one of two accounts racing for one address win; the other gets 409 email_taken', async () => {
    const a = await registeredUser(server, 'chmra');
    const b = await registeredUser(server, 'chmrb');
    const address = newAddress();
    await start(a, address);
    await start(b, address);
    const [codeA, codeB] = [await codeFor(address, a.username), await codeFor(address, b.username)];
    const results = await Promise.all([
      verifyEmailChange({ client: server.as(a.token), body: { code: codeA } }),
      verifyEmailChange({ client: server.as(b.token), body: { code: codeB } }),
    ]);
    expect(results.map((r) => r.response!.status).sort()).to.deep.equal([200, 409]);
    expect(results.find((r) => r.response!.status === 409)!.error).to.include({ code: 'email_taken' });
    const winner = results.find((r) => r.response!.status === 200)!.data!;
    const loser = winner.id === a.id ? b : a;
    expect(winner.email).to.equal(address);
    expect((await getAccount({ client: server.as(loser.token), throwOnError: true })).data.email).to.equal(loser.email);
  });

  it('answers 409 email_taken when a registration took the address before the code came back', async () => {
    const user = await registeredUser(server, 'chmreg');
    const address = newAddress();
    await start(user, address);
    const code = await codeFor(address, user.username);
    await register({
      client: server.client,
      body: { username: uniqueUser('squat').username, email: address, password: 'squatting passphrase' },
      throwOnError: true,
    });
    const { error, response } = await verifyEmailChange({ client: server.as(user.token), body: { code } });
    expect(response!.status).to.equal(409);
    expect(error).to.include({ code: 'email_taken' });
  });

  describe('a Google-only account re-authenticates with a fresh Google credential', () => {
    const googleOnly = async () => {
      const sub = newSub();
      const email = uniqueUser('chmgo').email;
      const session = await googleSignIn({
        client: server.client,
        body: { credential: google.mint({ sub, email }) },
        throwOnError: true,
      });
      return { sub, email, token: session.data.access_token };
    };

    it('accepts an ID token of the linked subject issued within 10 minutes', async () => {
      const user = await googleOnly();
      const { response } = await changeEmail({
        client: server.as(user.token),
        body: { new_email: newAddress(), google_credential: google.mint({ sub: user.sub, email: user.email }) },
      });
      expect(response!.status).to.equal(202);
    });

    it('refuses alike a stale token, another subject, a password, and a forged token', async () => {
      const user = await googleOnly();
      const now = Math.floor(Date.now() / 1000);
      const proofs = [
        { google_credential: google.mint(user, { claims: { iat: now - 11 * 60 } }) },
        { google_credential: google.mint({ sub: newSub(), email: user.email }) },
        { password: 'any password at all' },
        { google_credential: `${google.mint(user).slice(0, -4)}AAAA` },
        {},
      ];
      for (const proof of proofs) {
        const { error, response } = await changeEmail({
          client: server.as(user.token),
          body: { new_email: newAddress(), ...proof },
        });
        expect(response!.status, JSON.stringify(Object.keys(proof))).to.equal(403);
        expect(error).to.include({ code: 'reauthentication_failed' });
      }
    });
  });

  it('answers 403 jwt_required to an API key, and 401 without a credential', async () => {
    const user = await registeredUser(server, 'chmkey');
    const key = (await createApiKey({ client: server.as(user.token), body: { name: 'ci' }, throwOnError: true })).data;
    const body = { new_email: newAddress(), password: user.password };
    for (const call of [
      changeEmail({ client: server.as(key.raw_key), body }),
      verifyEmailChange({ client: server.as(key.raw_key), body: { code: '123456' } }),
    ]) {
      const { error, response } = await call;
      expect(response!.status).to.equal(403);
      expect(error).to.include({ code: 'jwt_required' });
    }
    expect((await changeEmail({ client: server.client, body })).response!.status).to.equal(401);
    expect((await verifyEmailChange({ client: server.client, body: { code: '123456' } })).response!.status).to.equal(
      401,
    );
  });

  it('answers 400 validation_failed for a malformed address or code', async () => {
    const user = await registeredUser(server, 'chmval');
    const bad = await changeEmail({
      client: server.as(user.token),
      body: { new_email: 'not an address', password: user.password },
    });
    expect(bad.error).to.include({ code: 'validation_failed' });
    const code = await verifyEmailChange({ client: server.as(user.token), body: { code: '12345' } });
    expect(code.error).to.include({ code: 'validation_failed' });
  });
});

describe(`changeEmail limits (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: TIGHT_EMAIL_LIMITS });
  });
  after(async () => {
    await server?.stop();
  });

  it('answers 429 to a second change to one address within the minute', async () => {
    const user = await registeredUser(server, 'chmlim');
    const body = { new_email: uniqueUser('lim').email, password: user.password };
    expect((await changeEmail({ client: server.as(user.token), body })).response!.status).to.equal(202);
    const { error, response } = await changeEmail({ client: server.as(user.token), body });
    expect(response!.status).to.equal(429);
    expect(error).to.include({ code: 'too_many_requests' });
  });
});
