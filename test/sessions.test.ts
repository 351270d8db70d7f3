// Sessions through the generated SDK: refresh rotation and theft detection, logout scopes, the
// session list and revocation, the sessions a reset and an unlink end, and the refresh limit. On
// PostgreSQL also: two instances on one database, expiry moved with SQL, last_used_at, and the
// Google takeover guard (which needs a row edited to set up).
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import {
  createApiKey,
  forgotPassword,
  getAccount,
  googleSignIn,
  listSessions,
  login,
  logout,
  refreshSession,
  resetPassword,
  revokeSession,
  unlinkGoogle,
} from '../generated/sdk.gen.ts';
import { DB_LABEL, ON_POSTGRES } from './support/database.ts';
import { type GoogleFake, newSub, startGoogleFake } from './support/google.ts';
import { tokenFrom } from './support/mail.ts';
import { startServer, type TestServer, twoInstances } from './support/server.ts';
import { refusedWithin } from './support/requests.ts';
import { registeredUser } from './support/users.ts';
import { waitFor } from './support/wait.ts';

/** The test accounts live on example.test: as its Workspace domain, Google may link them by email. */
const WORKSPACE = { claims: { hd: 'example.test' } };

const REFRESH_TOKEN = /^[A-Za-z0-9_-]{43}$/;
const DAY = 86400_000;
const sidOf = (token: string) => (jwt.decode(token) as jwt.JwtPayload).sid as string;

type User = Awaited<ReturnType<typeof registeredUser>>;

/** What every test here asks of one server. */
function on(server: TestServer) {
  const signIn = async (user: User, userAgent = 'rst-test/1.0') =>
    (
      await login({
        client: server.client,
        body: { username: user.username, password: user.password },
        headers: { 'User-Agent': userAgent },
        throwOnError: true,
      })
    ).data;
  const refresh = (refresh_token: string) => refreshSession({ client: server.client, body: { refresh_token } });
  const reads = async (token: string) => (await getAccount({ client: server.as(token) })).response!.status;
  const sessions = async (token: string) =>
    (await listSessions({ client: server.as(token), throwOnError: true })).data.items;
  /** A refused refresh: 401 invalid_token with the RFC 6750 challenge. */
  const refusedRefresh = async (refreshToken: string) => {
    const { response, error } = await refresh(refreshToken);
    expect(response!.status, 'refresh status').to.equal(401);
    expect(error).to.include({ code: 'invalid_token', status: 401 });
    expect(response!.headers.get('www-authenticate')).to.equal('Bearer error="invalid_token"');
  };
  return { signIn, refresh, reads, sessions, refusedRefresh };
}

describe(`sessions (${DB_LABEL})`, () => {
  let google: GoogleFake;
  let server: TestServer;
  let s: ReturnType<typeof on>;
  before(async () => {
    google = await startGoogleFake();
    server = await startServer({ env: { GOOGLE_CLIENT_ID: google.audience, GOOGLE_CERTS_URL: google.certsUrl } });
    s = on(server);
  });
  after(async () => {
    await server?.stop();
    await google?.stop();
  });

  describe('login, refresh and rotation', () => {
    it('login opens a session: a refresh token, a JWT naming it, one current row in the list', async () => {
      const user = await registeredUser(server, 'sopen');
      const started = Date.now();
      const res = await login({
        client: server.client,
        body: { username: user.username, password: user.password },
        headers: { 'User-Agent': 'rst-test/1.0' },
      });
      expect(res.response!.status).to.equal(200);
      expect(res.response!.headers.get('cache-control')).to.equal('no-store');
      expect(res.data!.refresh_token).to.match(REFRESH_TOKEN);
      expect(res.data!.refresh_token).not.to.equal(user.refreshToken);
      const token = res.data!.access_token;
      const items = await s.sessions(token);
      expect(items).to.have.length(2); // registeredUser signed in once already
      const [mine, first] = items;
      expect(mine).to.include({ id: sidOf(token), method: 'password', user_agent: 'rst-test/1.0', current: true });
      expect(first).to.include({ id: sidOf(user.token), current: false });
      expect(mine!.ip).to.match(/127\.0\.0\.1$/);
      const expires = Date.parse(mine!.expires_at) - Date.parse(mine!.created_at);
      expect(expires).to.be.closeTo(30 * DAY, 5_000);
      expect(Date.parse(mine!.created_at)).to.be.closeTo(started, 10_000);
    });

    it('refresh spends the token and answers its successor: same session, new JWT, old JWT still good', async () => {
      const user = await registeredUser(server, 'srot');
      const first = await s.refresh(user.refreshToken);
      expect(first.response!.status).to.equal(200);
      expect(first.response!.headers.get('cache-control')).to.equal('no-store');
      const next = first.data!;
      expect(next).to.include({ token_type: 'bearer', expires_in: 3600 });
      expect(next.refresh_token).to.match(REFRESH_TOKEN).and.not.equal(user.refreshToken);
      expect(sidOf(next.access_token)).to.equal(sidOf(user.token));
      expect((jwt.decode(next.access_token) as jwt.JwtPayload).sub).to.equal(user.id);
      expect(await s.reads(next.access_token)).to.equal(200);
      expect(await s.reads(user.token)).to.equal(200);
      // The successor works in its turn, and so does the one after it.
      const second = (await s.refresh(next.refresh_token)).data!;
      const third = (await s.refresh(second.refresh_token)).data!;
      expect(await s.reads(third.access_token)).to.equal(200);
      expect(await s.sessions(third.access_token)).to.have.length(1);
    });

    it('a spent refresh token presented again ends the whole session (theft detection), and only it', async () => {
      const user = await registeredUser(server, 'stheft');
      const other = await s.signIn(user); // a second session of the same account
      const stolen = user.refreshToken;
      const legit = (await s.refresh(stolen)).data!; // the client rotates
      await s.refusedRefresh(stolen); // someone presents the spent token
      // Neither side can keep going: the current refresh token and every JWT of the session die.
      await s.refusedRefresh(legit.refresh_token);
      expect(await s.reads(legit.access_token)).to.equal(401);
      expect(await s.reads(user.token)).to.equal(401);
      // The account's other session is untouched.
      expect(await s.reads(other.access_token)).to.equal(200);
      expect((await s.sessions(other.access_token)).map((x) => x.id)).to.deep.equal([sidOf(other.access_token)]);
      expect((await s.refresh(other.refresh_token)).response!.status).to.equal(200);
    });

    it('5 concurrent refreshes with one token: exactly one succeeds, and the spent token the others sent ends the session', async () => {
      const user = await registeredUser(server, 'srace');
      const results = await Promise.all(Array.from({ length: 5 }, () => s.refresh(user.refreshToken)));
      const statuses = results.map((r) => r.response!.status).sort();
      expect(statuses).to.deep.equal([200, 401, 401, 401, 401]);
      for (const r of results.filter((x) => x.response!.status === 401))
        expect(r.error).to.include({ code: 'invalid_token' });
      const winner = results.find((r) => r.response!.status === 200)!.data!;
      await s.refusedRefresh(winner.refresh_token);
      expect(await s.reads(winner.access_token)).to.equal(401);
    });

    it('refuses an unknown refresh token, an access token in its place, and malformed bodies', async () => {
      const user = await registeredUser(server, 'sbad');
      await s.refusedRefresh('A'.repeat(43));
      await s.refusedRefresh(user.token.slice(0, 256));
      await s.refusedRefresh(`${user.refreshToken}x`);
      for (const body of [{}, { refresh_token: '' }, { refresh_token: 'x'.repeat(257) }, { refresh_token: 7 }]) {
        const { response, error } = await refreshSession({ client: server.client, body: body as never });
        expect(response!.status, JSON.stringify(body)).to.equal(400);
        expect(error).to.include({ code: 'validation_failed' });
      }
      const extra = await refreshSession({
        client: server.client,
        body: { refresh_token: user.refreshToken, scope: 'x' } as never,
      });
      expect(extra.response!.status).to.equal(400);
      // None of these spent or ended anything.
      expect((await s.refresh(user.refreshToken)).response!.status).to.equal(200);
    });
  });

  describe('logout', () => {
    /** Three sessions of one account. */
    async function threeSessions() {
      const user = await registeredUser(server, 'sout');
      const b = await s.signIn(user);
      const c = await s.signIn(user);
      return { user, a: { access_token: user.token, refresh_token: user.refreshToken }, b, c };
    }

    it('without a body ends the current session only: its JWT and refresh token die at once', async () => {
      const { a, b, c } = await threeSessions();
      const res = await logout({ client: server.as(b.access_token) });
      expect(res.response!.status).to.equal(204);
      expect(await s.reads(b.access_token)).to.equal(401);
      await s.refusedRefresh(b.refresh_token);
      expect(await s.reads(a.access_token)).to.equal(200);
      expect(await s.reads(c.access_token)).to.equal(200);
      expect((await s.sessions(a.access_token)).map((x) => x.id)).to.have.members([
        sidOf(a.access_token),
        sidOf(c.access_token),
      ]);
    });

    it('scope current is the same as no body', async () => {
      const { a, b } = await threeSessions();
      expect(
        (await logout({ client: server.as(a.access_token), body: { scope: 'current' } })).response!.status,
      ).to.equal(204);
      expect(await s.reads(a.access_token)).to.equal(401);
      expect(await s.reads(b.access_token)).to.equal(200);
    });

    it('scope others ends every other session and keeps this one', async () => {
      const { a, b, c } = await threeSessions();
      expect(
        (await logout({ client: server.as(a.access_token), body: { scope: 'others' } })).response!.status,
      ).to.equal(204);
      expect(await s.reads(a.access_token)).to.equal(200);
      for (const gone of [b, c]) {
        expect(await s.reads(gone.access_token)).to.equal(401);
        await s.refusedRefresh(gone.refresh_token);
      }
      expect(await s.sessions(a.access_token)).to.have.length(1);
      expect((await s.refresh(a.refresh_token)).response!.status).to.equal(200);
    });

    it('scope all ends every session, this one too; API keys are not sessions and stay', async () => {
      const { a, b, c } = await threeSessions();
      const key = (await createApiKey({ client: server.as(a.access_token), body: { name: 'ci' }, throwOnError: true }))
        .data.raw_key;
      expect((await logout({ client: server.as(a.access_token), body: { scope: 'all' } })).response!.status).to.equal(
        204,
      );
      for (const gone of [a, b, c]) {
        expect(await s.reads(gone.access_token)).to.equal(401);
        await s.refusedRefresh(gone.refresh_token);
      }
      expect(await s.reads(key)).to.equal(200);
    });

    it('refuses an API key (403 jwt_required), no credential (401), and an unknown scope (400)', async () => {
      const user = await registeredUser(server, 'soutbad');
      const key = (await createApiKey({ client: server.as(user.token), body: { name: 'k' }, throwOnError: true })).data
        .raw_key;
      const byKey = await logout({ client: server.as(key), body: { scope: 'all' } });
      expect(byKey.response!.status).to.equal(403);
      expect(byKey.error).to.include({ code: 'jwt_required' });
      const none = await logout({ client: server.client });
      expect(none.response!.status).to.equal(401);
      const bad = await logout({ client: server.as(user.token), body: { scope: 'everything' } as never });
      expect(bad.response!.status).to.equal(400);
      expect(bad.error).to.include({ code: 'validation_failed' });
      expect(await s.reads(user.token)).to.equal(200);
    });

    it('a logged-out JWT is refused like any revoked credential, and logging out twice is 401', async () => {
      const user = await registeredUser(server, 'stwice');
      await logout({ client: server.as(user.token), throwOnError: true });
      const again = await logout({ client: server.as(user.token) });
      expect(again.response!.status).to.equal(401);
      expect(again.error).to.include({ code: 'unauthorized' });
      expect(again.response!.headers.get('www-authenticate')).to.equal('Bearer error="invalid_token"');
    });
  });

  describe('list and revoke', () => {
    it('lists active sessions only, newest first, with the current one marked', async () => {
      const user = await registeredUser(server, 'slist');
      const b = await s.signIn(user, 'second agent');
      const c = await s.signIn(user, 'third agent');
      await revokeSession({ client: server.as(c.access_token), path: { session_id: sidOf(b.access_token) } });
      const res = await listSessions({ client: server.as(user.token) });
      expect(res.response!.status).to.equal(200);
      expect(res.response!.headers.get('cache-control')).to.equal('no-store');
      const items = res.data!.items;
      expect(items.map((x) => x.id)).to.deep.equal([sidOf(c.access_token), sidOf(user.token)]);
      expect(items.map((x) => x.current)).to.deep.equal([false, true]);
      expect(items[0]).to.include({ user_agent: 'third agent', method: 'password' });
      for (const item of items) {
        expect(Date.parse(item.last_used_at)).to.be.at.least(Date.parse(item.created_at));
        expect(Object.keys(item).sort()).to.deep.equal(
          ['created_at', 'current', 'expires_at', 'id', 'ip', 'last_used_at', 'method', 'user_agent'].sort(),
        );
      }
    });

    it('cuts a long User-Agent to 256 characters', async () => {
      const user = await registeredUser(server, 'sua');
      const long = `agent ${'é'.repeat(400)}`;
      const session = await s.signIn(user, long);
      const [mine] = await s.sessions(session.access_token);
      expect(mine!.user_agent).to.equal(long.slice(0, 256));
    });

    it('revokes another session of the account: its JWT and refresh token die at once; a second time is 404', async () => {
      const user = await registeredUser(server, 'srev');
      const b = await s.signIn(user);
      const id = sidOf(b.access_token);
      const res = await revokeSession({ client: server.as(user.token), path: { session_id: id } });
      expect(res.response!.status).to.equal(204);
      expect(await s.reads(b.access_token)).to.equal(401);
      await s.refusedRefresh(b.refresh_token);
      const again = await revokeSession({ client: server.as(user.token), path: { session_id: id } });
      expect(again.response!.status).to.equal(404);
      expect(again.error).to.include({ code: 'session_not_found' });
      expect(await s.reads(user.token)).to.equal(200);
    });

    it("answers one 404 for another account's session, which keeps working, and for an unknown id", async () => {
      const mine = await registeredUser(server, 'sown');
      const theirs = await registeredUser(server, 'stheirs');
      const answers = [];
      for (const id of [sidOf(theirs.token), '00000000-0000-4000-8000-000000000000']) {
        const { response, error } = await revokeSession({ client: server.as(mine.token), path: { session_id: id } });
        expect(response!.status).to.equal(404);
        answers.push(error);
      }
      expect(answers[0]).to.deep.equal(answers[1]).and.to.include({ code: 'session_not_found' });
      expect(await s.reads(theirs.token)).to.equal(200);
      expect((await s.refresh(theirs.refreshToken)).response!.status).to.equal(200);
    });

    it('may revoke the current session; refuses a non-UUID id (400), an API key (403) and no credential (401)', async () => {
      const user = await registeredUser(server, 'srevbad');
      const key = (await createApiKey({ client: server.as(user.token), body: { name: 'k' }, throwOnError: true })).data
        .raw_key;
      const bad = await revokeSession({ client: server.as(user.token), path: { session_id: 'not-a-uuid' } });
      expect(bad.response!.status).to.equal(400);
      expect(bad.error).to.include({ code: 'validation_failed' });
      for (const client of [server.as(key), server.client]) {
        const listed = await listSessions({ client });
        const revoked = await revokeSession({ client, path: { session_id: sidOf(user.token) } });
        const status = client === server.client ? 401 : 403;
        expect(listed.response!.status).to.equal(status);
        expect(revoked.response!.status).to.equal(status);
        if (status === 403) expect(revoked.error).to.include({ code: 'jwt_required' });
      }
      const self = await revokeSession({ client: server.as(user.token), path: { session_id: sidOf(user.token) } });
      expect(self.response!.status).to.equal(204);
      expect(await s.reads(user.token)).to.equal(401);
    });

    it('keeps at most 100 sessions: the 101st sign-in ends the least recently refreshed', async function () {
      this.timeout(120_000);
      const user = await registeredUser(server, 'scap');
      let last = { access_token: user.token, refresh_token: user.refreshToken };
      for (let i = 0; i < 100; i++) last = await s.signIn(user);
      const items = await s.sessions(last.access_token);
      expect(items).to.have.length(100);
      expect(items.map((x) => x.id)).not.to.include(sidOf(user.token));
      expect(await s.reads(user.token)).to.equal(401);
      await s.refusedRefresh(user.refreshToken);
    });
  });

  describe('sessions other operations end', () => {
    it('a password reset ends every session of the account', async () => {
      const user = await registeredUser(server, 'sreset');
      const b = await s.signIn(user);
      await forgotPassword({ client: server.client, body: { email: user.email }, throwOnError: true });
      const token = tokenFrom(await server.consoleMail(user.email, 2));
      await resetPassword({
        client: server.client,
        body: { token, new_password: `reset ${user.password}` },
        throwOnError: true,
      });
      for (const gone of [
        { access_token: user.token, refresh_token: user.refreshToken },
        { access_token: b.access_token, refresh_token: b.refresh_token },
      ]) {
        expect(await s.reads(gone.access_token)).to.equal(401);
        await s.refusedRefresh(gone.refresh_token);
      }
      const fresh = await s.signIn({ ...user, password: `reset ${user.password}` });
      expect(await s.sessions(fresh.access_token)).to.have.length(1);
    });

    it('Google sign-in opens a google session; unlinking Google ends those and keeps the password ones', async () => {
      const user = await registeredUser(server, 'sunlink');
      const sub = newSub();
      const viaGoogle = (
        await googleSignIn({
          client: server.client,
          body: { credential: google.mint({ sub, email: user.email }, WORKSPACE) },
          throwOnError: true,
        })
      ).data;
      expect(viaGoogle.refresh_token).to.match(REFRESH_TOKEN);
      const listed = await s.sessions(user.token);
      expect(listed.map((x) => [x.id, x.method])).to.deep.equal([
        [sidOf(viaGoogle.access_token), 'google'],
        [sidOf(user.token), 'password'],
      ]);
      // A refreshed Google session is still a Google session.
      const refreshed = (await s.refresh(viaGoogle.refresh_token)).data!;

      const res = await unlinkGoogle({ client: server.as(user.token) });
      expect(res.response!.status).to.equal(200);
      expect(await s.reads(refreshed.access_token)).to.equal(401);
      await s.refusedRefresh(refreshed.refresh_token);
      expect(await s.reads(user.token)).to.equal(200);
      expect((await s.sessions(user.token)).map((x) => x.method)).to.deep.equal(['password']);
    });

    it('an unlink asked with a Google session ends that session too', async () => {
      const user = await registeredUser(server, 'sunself');
      const viaGoogle = (
        await googleSignIn({
          client: server.client,
          body: { credential: google.mint({ sub: newSub(), email: user.email }, WORKSPACE) },
          throwOnError: true,
        })
      ).data;
      const res = await unlinkGoogle({ client: server.as(viaGoogle.access_token) });
      expect(res.response!.status).to.equal(200);
      expect(res.data).to.include({ google_linked: false });
      expect(await s.reads(viaGoogle.access_token)).to.equal(401);
      expect(await s.reads(user.token)).to.equal(200);
    });

    it('a refused unlink ends nothing', async () => {
      const user = await registeredUser(server, 'sunno');
      const res = await unlinkGoogle({ client: server.as(user.token) });
      expect(res.response!.status).to.equal(409);
      expect(await s.reads(user.token)).to.equal(200);
    });
  });
});

describe(`refresh limits (${DB_LABEL})`, () => {
  let server: TestServer;
  let s: ReturnType<typeof on>;
  before(async () => {
    server = await startServer({ env: { RATE_LIMIT_REFRESH_IP: '3/900' } });
    s = on(server);
  });
  after(async () => {
    await server?.stop();
  });

  it('gives successful refreshes back, and answers 429 past 3 refused ones per IP, even for a good token', async () => {
    const user = await registeredUser(server, 'slimit');
    let current = user.refreshToken;
    for (let i = 0; i < 5; i++) {
      const res = await s.refresh(current);
      expect(res.response!.status, `refresh ${i + 1}`).to.equal(200);
      current = res.data!.refresh_token;
    }
    for (let i = 0; i < 3; i++) await s.refusedRefresh(`${'B'.repeat(42)}${i}`);
    const { response, error } = await s.refresh(current);
    expect(response!.status).to.equal(429);
    expect(error).to.include({ code: 'too_many_requests' });
    expect(Number(response!.headers.get('retry-after'))).to.be.within(1, 900);
    expect(response!.headers.get('ratelimit-policy')).to.equal('3;w=900');
    // The refused attempt did not spend the token: it works once the window has passed (shown on
    // PostgreSQL below by moving the window), and the session itself is untouched.
    expect(await s.reads(user.token)).to.equal(200);
  });
});

if (ON_POSTGRES) {
  describe('sessions across two instances (PostgreSQL)', () => {
    let a: TestServer;
    let b: TestServer;
    twoInstances({}, (first, second) => {
      a = first;
      b = second;
    });

    it('a session logged out on one instance is refused by the other within 100 ms', async () => {
      const user = await registeredUser(a, 'sinst');
      const onA = on(a);
      const onB = on(b);
      // Warm both: b has verified this JWT's signature and cached its session.
      expect(await onB.reads(user.token)).to.equal(200);
      expect(await onA.reads(user.token)).to.equal(200);
      await logout({ client: a.as(user.token), throwOnError: true });
      expect(await onA.reads(user.token), 'on the instance that answered: the very next request').to.equal(401);
      await refusedWithin(b, user.token);
      await onB.refusedRefresh(user.refreshToken);
    });

    it('a session revoked on one instance is refused by the other within 100 ms; refresh works across them', async () => {
      const user = await registeredUser(a, 'sinst2');
      const onA = on(a);
      const onB = on(b);
      const second = await onA.signIn(user);
      const refreshed = (await onB.refresh(second.refresh_token)).data!;
      expect(await onA.reads(refreshed.access_token)).to.equal(200);
      await revokeSession({
        client: b.as(user.token),
        path: { session_id: sidOf(second.access_token) },
        throwOnError: true,
      });
      await refusedWithin(a, refreshed.access_token);
      await refusedWithin(a, second.access_token);
      // A spent token presented to the other instance is recognised as spent there too.
      const third = await onA.signIn(user);
      const rotated = (await onA.refresh(third.refresh_token)).data!;
      await onB.refusedRefresh(third.refresh_token);
      await onA.refusedRefresh(rotated.refresh_token);
    });
  });

  describe('session lifetimes and last_used_at (PostgreSQL)', () => {
    let server: TestServer;
    let s: ReturnType<typeof on>;
    before(async () => {
      server = await startServer();
      s = on(server);
    });
    after(async () => {
      await server?.stop();
    });
    const row = async (id: string) =>
      (
        await server.sql<{ expires_at: Date; absolute_expires_at: Date; last_used_at: Date; created_at: Date }>(
          'select expires_at, absolute_expires_at, last_used_at, created_at from sessions where id = $1',
          [id],
        )
      )[0]!;

    it('keeps no refresh token in the clear: the session row holds a keyed hash of it', async () => {
      const user = await registeredUser(server, 'shash');
      const [r] = await server.sql<{ refresh_hash: string }>('select refresh_hash from sessions where id = $1', [
        sidOf(user.token),
      ]);
      expect(r!.refresh_hash)
        .to.match(/^[A-Za-z0-9_-]{43}$/)
        .and.not.equal(user.refreshToken);
      const dump = await server.dumpDatabase();
      expect(dump).not.to.include(user.refreshToken);
      const next = (await s.refresh(user.refreshToken)).data!;
      expect(await server.dumpDatabase())
        .not.to.include(next.refresh_token)
        .and.not.to.include(user.refreshToken);
    });

    it('opens with 30 days to go and at most 90 in all', async () => {
      const user = await registeredUser(server, 'slife');
      const r = await row(sidOf(user.token));
      expect(r.expires_at.getTime() - r.created_at.getTime()).to.be.closeTo(30 * DAY, 1000);
      expect(r.absolute_expires_at.getTime() - r.created_at.getTime()).to.be.closeTo(90 * DAY, 1000);
    });

    it('an expired session: its JWT and its refresh token are refused', async () => {
      const user = await registeredUser(server, 'sexp');
      expect(await s.reads(user.token)).to.equal(200);
      await server.sql(`update sessions set expires_at = now() - interval '1 second' where id = $1`, [
        sidOf(user.token),
      ]);
      expect(await s.reads(user.token)).to.equal(401);
      await s.refusedRefresh(user.refreshToken);
      expect(await s.sessions((await s.signIn(user)).access_token)).to.have.length(1);
    });

    it('a refresh moves expiry 30 days on (idle), but never past the absolute end', async () => {
      const user = await registeredUser(server, 'sidle');
      const id = sidOf(user.token);
      // As if opened 80 days ago and last refreshed 20 days ago.
      await server.sql(
        `update sessions set created_at = now() - interval '80 days', expires_at = now() + interval '10 days',
           absolute_expires_at = now() + interval '10 days' where id = $1`,
        [id],
      );
      const one = (await s.refresh(user.refreshToken)).data!;
      let r = await row(id);
      expect(r.expires_at.getTime()).to.equal(r.absolute_expires_at.getTime());
      await server.sql(`update sessions set absolute_expires_at = now() + interval '60 days' where id = $1`, [id]);
      const two = (await s.refresh(one.refresh_token)).data!;
      r = await row(id);
      expect(r.expires_at.getTime() - Date.now()).to.be.closeTo(30 * DAY, 10_000);
      // Past the absolute end, nothing renews it.
      await server.sql(
        `update sessions set absolute_expires_at = now() - interval '1 second', expires_at = now() - interval '1 second' where id = $1`,
        [id],
      );
      await s.refusedRefresh(two.refresh_token);
      expect(await s.reads(two.access_token)).to.equal(401);
    });

    it('records last_used_at within a minute without a write per read', async function () {
      this.timeout(20_000);
      // Every read asks the database here, so the SQL below that ages the use (which no trigger
      // publishes) is seen at once; what the cache does is in credentialCache.test.ts.
      const uncached = await startServer({ shareDatabaseWith: server, env: { CREDENTIAL_CACHE: 'off' } });
      try {
        const u = on(uncached);
        const user = await registeredUser(uncached, 'sused');
        const id = sidOf(user.token);
        const recent = (await row(id)).last_used_at.getTime();
        for (let i = 0; i < 5; i++) expect(await u.reads(user.token)).to.equal(200);
        // Used within the minute: the reads wrote nothing (two flushes of the writer have passed).
        await new Promise((r) => setTimeout(r, 4500));
        expect((await row(id)).last_used_at.getTime()).to.equal(recent);
        // Older than that: the next read marks it, and the batch writes it.
        await server.sql(`update sessions set last_used_at = now() - interval '5 minutes' where id = $1`, [id]);
        const before = Date.now();
        expect(await u.reads(user.token)).to.equal(200);
        await waitFor(
          async () => (await row(id)).last_used_at.getTime() >= before - 1000,
          'last_used_at recorded',
          10_000,
        );
        const [listed] = await u.sessions(user.token);
        expect(Date.parse(listed!.last_used_at)).to.be.closeTo(Date.now(), 15_000);
      } finally {
        await uncached.stop();
      }
    });

    it('a refresh refused by the limit did not spend the token: once the window is moved, it works', async () => {
      const limited = await startServer({ shareDatabaseWith: server, env: { RATE_LIMIT_REFRESH_IP: '1/900' } });
      try {
        const l = on(limited);
        const user = await registeredUser(limited, 'swin');
        // This database's counter already holds the refusals of the tests above.
        await limited.sql(`delete from rate_limits where key like 'refresh-ip:%'`);
        await l.refusedRefresh('C'.repeat(43));
        expect((await l.refresh(user.refreshToken)).response!.status).to.equal(429);
        await limited.sql(
          `update rate_limits set window_start = now() - interval '1 hour' where key like 'refresh-ip:%'`,
        );
        expect((await l.refresh(user.refreshToken)).response!.status).to.equal(200);
      } finally {
        await limited.stop();
      }
    });
  });

  describe('the Google takeover guard ends the reclaimed account’s sessions (PostgreSQL)', () => {
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

    it('JWTs, refresh tokens and API keys of an unverified account die when Google reclaims it', async () => {
      const s = on(server);
      const user = await registeredUser(server, 'sguard');
      const key = (await createApiKey({ client: server.as(user.token), body: { name: 'sq' }, throwOnError: true })).data
        .raw_key;
      const other = await s.signIn(user);
      // Through the API an unverified account never holds a session: set that state up by hand.
      await server.sql('update accounts set email_verified = false where id = $1', [user.id]);
      const reclaimed = (
        await googleSignIn({
          client: server.client,
          body: { credential: google.mint({ sub: newSub(), email: user.email }) },
          throwOnError: true,
        })
      ).data;
      for (const credential of [user.token, other.access_token, key]) expect(await s.reads(credential)).to.equal(401);
      await s.refusedRefresh(user.refreshToken);
      await s.refusedRefresh(other.refresh_token);
      const left = await s.sessions(reclaimed.access_token);
      expect(left.map((x) => [x.id, x.method])).to.deep.equal([[sidOf(reclaimed.access_token), 'google']]);
    });
  });
}
