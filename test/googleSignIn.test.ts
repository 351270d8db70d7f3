import { expect } from 'chai';
import { getAccount, googleSignIn, login, register } from '../generated/sdk.gen.ts';
import { DB_LABEL } from './support/database.ts';
import { type GoogleFake, hmacWithCertificate, newSub, otherKey, startGoogleFake } from './support/google.ts';
import { startServer, type TestServer } from './support/server.ts';
import { registeredUser, uniqueUser } from './support/users.ts';

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$/;

describe(`googleSignIn (${DB_LABEL})`, () => {
  let google: GoogleFake;
  let server: TestServer;
  before(async () => {
    google = await startGoogleFake();
    server = await startServer({
      env: {
        GOOGLE_CLIENT_ID: `other-client.apps.googleusercontent.com, ${google.audience}`,
        GOOGLE_CERTS_URL: google.certsUrl,
      },
    });
  });
  after(async () => {
    await server?.stop();
    await google?.stop();
  });

  const signIn = (credential: string, nonce?: string) =>
    googleSignIn({ client: server.client, body: nonce === undefined ? { credential } : { credential, nonce } });
  const accountOf = async (token: string) => (await getAccount({ client: server.as(token), throwOnError: true })).data;

  describe('sign-up, sign-in and linking', () => {
    it('signs up a new Google user: verified, no password, Google the only sign-in method', async () => {
      const email = `${uniqueUser('gnew').email}`;
      const { data, response } = await signIn(google.mint({ sub: newSub(), email: email.toUpperCase() }));
      expect(response!.status).to.equal(200);
      expect(response!.headers.get('cache-control')).to.equal('no-store');
      expect(data).to.include({ token_type: 'bearer', account_created: true });
      expect(data!.expires_in).to.be.a('number').above(0);
      const account = await accountOf(data!.access_token);
      expect(account).to.include({
        email: email.toLowerCase(),
        email_verified: true,
        google_linked: true,
        has_password: false,
        can_unlink_google: false,
      });
      expect(account.available_sign_in_methods).to.deep.equal(['google']);
      expect(account.username).to.match(USERNAME);
      expect(account.username).to.equal(
        email
          .split('@')[0]!
          .toLowerCase()
          .replace(/[^a-z0-9_.-]+/g, '_'),
      );
    });

    it('signs the same Google subject in again without creating another account', async () => {
      const identity = { sub: newSub(), email: uniqueUser('gagain').email };
      const first = await signIn(google.mint(identity));
      const second = await signIn(google.mint(identity));
      expect(first.data).to.include({ account_created: true });
      expect(second.response!.status).to.equal(200);
      expect(second.data).to.include({ account_created: false });
      expect((await accountOf(second.data!.access_token)).id).to.equal((await accountOf(first.data!.access_token)).id);
    });

    it('follows the subject, not the email: a changed Google email still reaches the same account', async () => {
      const sub = newSub();
      const first = await signIn(google.mint({ sub, email: uniqueUser('gold').email }));
      const later = await signIn(google.mint({ sub, email: uniqueUser('gnewmail').email }));
      expect(later.data).to.include({ account_created: false });
      expect((await accountOf(later.data!.access_token)).id).to.equal((await accountOf(first.data!.access_token)).id);
    });

    it('links a verified password account with the same email, keeping its password and sessions', async () => {
      const user = await registeredUser(server, 'glink');
      const { data, response } = await signIn(google.mint({ sub: newSub(), email: user.email.toUpperCase() }));
      expect(response!.status).to.equal(200);
      expect(data).to.include({ account_created: false });
      const account = await accountOf(data!.access_token);
      expect(account).to.include({
        id: user.id,
        username: user.username,
        google_linked: true,
        has_password: true,
        can_unlink_google: true,
      });
      expect(account.available_sign_in_methods).to.deep.equal(['password', 'google']);
      // Nothing about the account was in doubt: the old session and the password still work.
      expect((await accountOf(user.token)).id).to.equal(user.id);
      const again = await login({ client: server.client, body: { username: user.username, password: user.password } });
      expect(again.response!.status).to.equal(200);
    });

    // That its sessions and API keys die too is in sessions.test.ts (PostgreSQL): through the API
    // an unverified account never holds a session, so one is made there by editing a row.
    it('takes an unverified password account away from whoever pre-registered the email: the password dies', async () => {
      // Someone registers the victim's email with their own password and never verifies it.
      const squatter = uniqueUser('gsquat');
      const created = await register({ client: server.client, body: squatter, throwOnError: true });

      const { data, response } = await signIn(google.mint({ sub: newSub(), email: squatter.email }));
      expect(response!.status).to.equal(200);
      expect(data).to.include({ account_created: false });
      const account = await accountOf(data!.access_token);
      expect(account).to.include({
        id: created.data.id,
        email_verified: true,
        google_linked: true,
        has_password: false,
        can_unlink_google: false,
      });
      expect(account.available_sign_in_methods).to.deep.equal(['google']);

      const byPassword = await login({
        client: server.client,
        body: { username: squatter.username, password: squatter.password },
      });
      expect(byPassword.response!.status).to.equal(401);
      expect(byPassword.error).to.include({ code: 'invalid_credentials' });
    });

    it('refuses a second Google subject for an email already linked to another one', async () => {
      const email = uniqueUser('gtwo').email;
      const first = await signIn(google.mint({ sub: newSub(), email }));
      expect(first.data).to.include({ account_created: true });
      const { error, response } = await signIn(google.mint({ sub: newSub(), email }));
      expect(response!.status).to.equal(401);
      expect(error).to.include({ code: 'invalid_google_credential' });
      const account = await accountOf(first.data!.access_token);
      expect(account.google_linked).to.equal(true);
    });

    it('derives valid, distinct usernames from awkward or colliding email local parts', async () => {
      const tag = uniqueUser('x').username.slice(2, 12);
      const emails = [
        `Jörg.Müller+news.${tag}@example.test`,
        `jorg.muller_news.${tag}@other.example.test`, // the same username base as the one above
        `ab@${tag}.example.test`,
        `__${tag}@example.test`,
        `${'long'.repeat(20)}${tag}@example.test`,
      ];
      const names: string[] = [];
      for (const email of emails) {
        const { data } = await signIn(google.mint({ sub: newSub(), email }));
        expect(data, email).to.include({ account_created: true });
        names.push((await accountOf(data!.access_token)).username);
      }
      for (const name of names) expect(name).to.match(USERNAME);
      expect(new Set(names.map((n) => n.toLowerCase())).size).to.equal(names.length);
      expect(names[0]).to.equal(`jorg.muller_news.${tag}`);
      expect(names[1]!.startsWith(names[0]!.slice(0, 27))).to.equal(true); // the same base, made unique
      expect(names[2]).to.equal('user_ab');
      expect(names[3]).to.equal(tag);
      expect(names[4]).to.have.length(32);
    });

    it('accepts email_verified sent as the string "true", and a matching nonce', async () => {
      const nonce = 'n-0S6_WzA2Mj';
      const { data, response } = await signIn(
        google.mint({ sub: newSub(), email: uniqueUser('gstr').email }, { claims: { email_verified: 'true', nonce } }),
        nonce,
      );
      expect(response!.status).to.equal(200);
      expect(data).to.include({ account_created: true });
    });

    it('accepts the issuer without a scheme, and every configured audience', async () => {
      const a = await signIn(
        google.mint({ sub: newSub(), email: uniqueUser('giss').email }, { claims: { iss: 'accounts.google.com' } }),
      );
      expect(a.response!.status).to.equal(200);
      const b = await signIn(
        google.mint(
          { sub: newSub(), email: uniqueUser('gaud').email },
          { claims: { aud: 'other-client.apps.googleusercontent.com' } },
        ),
      );
      expect(b.response!.status).to.equal(200);
    });

    it('makes one account from 5 concurrent first sign-ins of one Google subject', async () => {
      const identity = { sub: newSub(), email: uniqueUser('grace').email };
      const results = await Promise.all(Array.from({ length: 5 }, () => signIn(google.mint(identity))));
      for (const r of results) expect(r.response!.status).to.equal(200);
      expect(results.filter((r) => r.data!.account_created)).to.have.length(1);
      const ids = await Promise.all(results.map(async (r) => (await accountOf(r.data!.access_token)).id));
      expect(new Set(ids).size).to.equal(1);
    });

    it('links one pre-registered account once under 5 concurrent sign-ins', async () => {
      const user = await registeredUser(server, 'glrace');
      const results = await Promise.all(
        Array.from({ length: 5 }, () => signIn(google.mint({ sub: newSub(), email: user.email }))),
      );
      // Five different subjects race for one email: exactly one may own it.
      const won = results.filter((r) => r.response!.status === 200);
      expect(won).to.have.length(1);
      for (const r of results.filter((r) => r.response!.status !== 200))
        expect(r.error).to.include({ code: 'invalid_google_credential' });
      expect((await accountOf(won[0]!.data!.access_token)).id).to.equal(user.id);
    });
  });

  describe('refused credentials (401 invalid_google_credential)', () => {
    const identity = () => ({ sub: newSub(), email: uniqueUser('gbad').email });
    const now = () => Math.floor(Date.now() / 1000);
    const cases: [string, () => string, string?][] = [
      [
        'a wrong audience',
        () => google.mint(identity(), { claims: { aud: 'someone-else.apps.googleusercontent.com' } }),
      ],
      ['an expired token', () => google.mint(identity(), { claims: { iat: now() - 7200, exp: now() - 3600 } })],
      [
        'a token issued in the future',
        () => google.mint(identity(), { claims: { iat: now() + 3600, exp: now() + 7200 } }),
      ],
      ['a token without exp', () => google.mint(identity(), { claims: { exp: undefined } })],
      ['a signature by another key under the served kid', () => google.mint(identity(), { key: otherKey() })],
      ['an unknown kid', () => google.mint(identity(), { header: { kid: 'not-a-served-kid' } })],
      [
        'a tampered payload',
        () => {
          const [h, , s] = google.mint(identity()).split('.');
          const forged = Buffer.from(
            JSON.stringify({
              iss: 'https://accounts.google.com',
              aud: google.audience,
              sub: '1',
              email: 'admin@example.test',
              email_verified: true,
              iat: now(),
              exp: now() + 600,
            }),
          ).toString('base64url');
          return `${h}.${forged}.${s}`;
        },
      ],
      [
        'alg: none',
        () => {
          const [, p] = google.mint(identity()).split('.');
          return `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${p}.`;
        },
      ],
      [
        'alg: none keeping the kid and a signature',
        () => {
          const [, p, s] = google.mint(identity()).split('.');
          return `${Buffer.from(JSON.stringify({ alg: 'none', kid: google.kid })).toString('base64url')}.${p}.${s}`;
        },
      ],
      [
        'HS256 with the public certificate as the secret',
        () => hmacWithCertificate(google.mint(identity()), google.certificate),
      ],
      ['a wrong issuer', () => google.mint(identity(), { claims: { iss: 'https://evil.example' } })],
      ["Google's universe domain as issuer", () => google.mint(identity(), { claims: { iss: 'googleapis.com' } })],
      ['an unverified email', () => google.mint(identity(), { claims: { email_verified: false } })],
      ['email_verified as the string "false"', () => google.mint(identity(), { claims: { email_verified: 'false' } })],
      ['no email_verified claim', () => google.mint(identity(), { claims: { email_verified: undefined } })],
      ['no email claim', () => google.mint(identity(), { claims: { email: undefined } })],
      ['a nonce mismatch', () => google.mint(identity(), { claims: { nonce: 'token-nonce' } }), 'request-nonce'],
      ['a nonce expected but absent from the token', () => google.mint(identity()), 'request-nonce'],
      ['garbage', () => 'not a token at all'],
      ['three segments of garbage', () => 'a.b.c'],
      ['a JWT-looking string with broken JSON', () => `${Buffer.from('{"alg":"RS256"').toString('base64url')}.e30.sig`],
    ];
    for (const [name, credential, nonce] of cases) {
      it(`refuses ${name}`, async () => {
        const { error, response } = await signIn(credential(), nonce);
        expect(response!.status).to.equal(401);
        expect(error).to.include({ code: 'invalid_google_credential' });
        expect(response!.headers.get('www-authenticate')).to.equal('Bearer');
      });
    }

    it('creates no account for a refused credential', async () => {
      const who = identity();
      await signIn(google.mint(who, { claims: { email_verified: false } }));
      const { data } = await signIn(google.mint(who));
      expect(data).to.include({ account_created: true });
    });

    it('refuses an empty credential and unknown fields as validation_failed', async () => {
      const empty = await googleSignIn({ client: server.client, body: { credential: '' } });
      expect(empty.response!.status).to.equal(400);
      expect(empty.error).to.include({ code: 'validation_failed' });
      const extra = await googleSignIn({ client: server.client, body: { credential: 'x', admin: true } as never });
      expect(extra.response!.status).to.equal(400);
      expect(extra.error).to.include({ code: 'validation_failed' });
    });

    it('fetches the certificates once per max-age, not once per sign-in', async () => {
      await signIn(google.mint(identity()));
      const fetched = google.fetches();
      expect(fetched).to.be.at.least(1);
      for (let i = 0; i < 3; i++) expect((await signIn(google.mint(identity()))).response!.status).to.equal(200);
      expect(google.fetches()).to.equal(fetched);
    });
  });
});

describe(`googleSignIn without GOOGLE_CLIENT_ID (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  it('answers 503 google_not_configured', async () => {
    const google = await startGoogleFake();
    try {
      const { error, response } = await googleSignIn({
        client: server.client,
        body: { credential: google.mint({ sub: newSub(), email: uniqueUser('gnc').email }) },
      });
      expect(response!.status).to.equal(503);
      expect(error).to.include({ code: 'google_not_configured' });
    } finally {
      await google.stop();
    }
  });
});

describe(`googleSignIn limits and outages (${DB_LABEL})`, () => {
  let google: GoogleFake;
  let limited: TestServer;
  let orphan: TestServer;
  let gone: GoogleFake;
  before(async () => {
    google = await startGoogleFake();
    // A certificate URL nobody listens on: a fake that was started and stopped again.
    gone = await startGoogleFake();
    await gone.stop();
    // One after the other, so a start that fails leaves the other server reachable by after().
    limited = await startServer({
      env: { GOOGLE_CLIENT_ID: google.audience, GOOGLE_CERTS_URL: google.certsUrl, RATE_LIMIT_GOOGLE_IP: '3/900' },
    });
    orphan = await startServer({ env: { GOOGLE_CLIENT_ID: gone.audience, GOOGLE_CERTS_URL: gone.certsUrl } });
  });
  after(async () => {
    await Promise.all([limited?.stop(), orphan?.stop()]);
    await google?.stop();
  });

  it('answers 429 with Retry-After past the per-IP limit, even for a good credential', async () => {
    for (let i = 0; i < 3; i++) {
      const { response } = await googleSignIn({ client: limited.client, body: { credential: 'garbage' } });
      expect(response!.status).to.equal(401);
    }
    const { error, response } = await googleSignIn({
      client: limited.client,
      body: { credential: google.mint({ sub: newSub(), email: uniqueUser('grl').email }) },
    });
    expect(response!.status).to.equal(429);
    expect(error).to.include({ code: 'too_many_requests' });
    expect(Number(response!.headers.get('retry-after'))).to.be.within(1, 900);
  });

  it("answers 503 service_unavailable, not 401, when Google's certificates cannot be fetched", async () => {
    // A token that would pass if the certificates could be read.
    const { error, response } = await googleSignIn({
      client: orphan.client,
      body: { credential: gone.mint({ sub: newSub(), email: uniqueUser('gout').email }) },
    });
    expect(response!.status).to.equal(503);
    expect(error).to.include({ code: 'service_unavailable' });
    expect(Number(response!.headers.get('retry-after'))).to.be.above(0);
  });
});
