// @rst-auth/sdk's opt-in refreshing session against a real server: a refused access token is
// refreshed once and the call retried once, concurrent calls share one refresh, and an ended
// session is reported without a second refresh. The access token is made to expire by signing one
// for the live session with a one-second lifetime (JWT_TTL_SECONDS cannot go below 60).
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { createRstClient, RstProblem, type Session } from '@rst-auth/sdk';
import { logout } from '../generated/sdk.gen.ts';
import { validatingFetch } from './support/contract.ts';
import { DB_LABEL } from './support/database.ts';
import { startServer, TEST_ENV, type TestServer } from './support/server.ts';
import { registeredUser } from './support/users.ts';

/** A token of this session that is no longer valid: signed correctly, expired a moment ago. */
function expiredTokenFor(accessToken: string): string {
  const { sub, sid } = jwt.decode(accessToken) as jwt.JwtPayload;
  const now = Math.floor(Date.now() / 1000);
  return jwt.sign({ sid, iat: now - 120, exp: now - 60 }, TEST_ENV.JWT_SECRET!, {
    algorithm: 'HS256',
    subject: sub,
    issuer: 'rst',
    audience: 'rst-api',
  });
}

describe(`SDK refreshing session (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  /** A client on an expired access token and the user's refresh token, counting what it sends. */
  async function expiredClient(prefix: string) {
    const user = await registeredUser(server, prefix);
    const refreshed: Session[] = [];
    const sent: string[] = [];
    let ended = 0;
    const rst = createRstClient({
      baseUrl: server.url,
      fetch: async (input, init) => {
        const request = new Request(input, init);
        sent.push(new URL(request.url).pathname);
        return validatingFetch(request);
      },
      session: {
        access_token: expiredTokenFor(user.token),
        refresh_token: user.refreshToken,
        onRefresh: (tokens) => {
          refreshed.push(tokens);
        },
        onSessionEnded: () => {
          ended++;
        },
      },
    });
    return { user, rst, refreshed, sent, ended: () => ended };
  }

  it('refreshes a refused access token once, retries the call once, and hands over the new pair', async () => {
    const { user, rst, refreshed, sent } = await expiredClient('sdkr');
    const account = await rst.getAccount();
    expect(account.id).to.equal(user.id);
    expect(sent).to.deep.equal(['/v1/me/account', '/v1/auth/refresh', '/v1/me/account']);
    expect(refreshed).to.have.length(1);
    expect(refreshed[0]!.refresh_token).not.to.equal(user.refreshToken);
    // The next call goes out with the new token at once.
    await rst.listApiKeys();
    expect(sent.slice(3)).to.deep.equal(['/v1/auth/api-keys']);
  });

  it('retries a call with a body with the same body', async () => {
    const { rst, sent } = await expiredClient('sdkb');
    const key = await rst.createApiKey({ body: { name: 'after refresh' } });
    expect(key.name).to.equal('after refresh');
    expect(sent).to.deep.equal(['/v1/auth/api-keys', '/v1/auth/refresh', '/v1/auth/api-keys']);
  });

  it('shares one refresh among 6 concurrent calls (two refreshes would end the session)', async () => {
    const { user, rst, refreshed, sent } = await expiredClient('sdkc');
    const accounts = await Promise.all(Array.from({ length: 6 }, () => rst.getAccount()));
    for (const a of accounts) expect(a.id).to.equal(user.id);
    expect(refreshed).to.have.length(1);
    expect(sent.filter((p) => p === '/v1/auth/refresh')).to.have.length(1);
    // The session is still alive: a theft-detected double refresh would have ended it.
    const sessions = await rst.listSessions();
    expect(sessions.items.filter((x) => x.current)).to.have.length(1);
  });

  it('reports an ended session as the 401 it is, after one refresh attempt, and tries no more', async () => {
    const { user, rst, refreshed, sent, ended } = await expiredClient('sdke');
    await logout({ client: server.as(user.token), throwOnError: true });
    for (let i = 0; i < 2; i++) {
      const err = await rst.getAccount().catch((e: unknown) => e);
      expect(err).to.be.instanceOf(RstProblem);
      expect(err).to.include({ status: 401, code: 'unauthorized' });
    }
    expect(sent).to.deep.equal(['/v1/me/account', '/v1/auth/refresh', '/v1/me/account']);
    expect(refreshed).to.have.length(0);
    expect(ended()).to.equal(1);
  });

  it('refreshes only where a credential was refused: not for a public operation or a client without one', async () => {
    const { rst, sent } = await expiredClient('sdk4');
    const plain = createRstClient({ baseUrl: server.url, fetch: validatingFetch });
    const err = await plain.getAccount().catch((e: unknown) => e);
    expect(err).to.include({ status: 401 });
    // A public operation carries no credential, so its refusal is never taken for an expiry.
    const refused = await rst.login({ body: { username: 'nobody-here', password: 'x' } }).catch((e: unknown) => e);
    expect(refused).to.include({ code: 'invalid_credentials' });
    expect(sent).to.deep.equal(['/v1/auth/login']);
  });
});
