import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { getAccount } from '../generated/sdk.gen.ts';
import { DB_LABEL } from './support/database.ts';
import { startServer, TEST_ENV, type TestServer } from './support/server.ts';
import { registeredUser } from './support/users.ts';
import { sleep } from './support/wait.ts';

const SECRET = TEST_ENV.JWT_SECRET!;

describe(`getAccount and JWT sessions (${DB_LABEL})`, () => {
  let server: TestServer;
  let user: Awaited<ReturnType<typeof registeredUser>>;
  before(async () => {
    server = await startServer();
    user = await registeredUser(server, 'acct');
  });
  after(async () => {
    await server.stop();
  });

  const refused = async (token: string, error: 'invalid_token' | null = 'invalid_token') => {
    const { response, error: problem } = await getAccount({ client: server.as(token) });
    expect(response!.status, token).to.equal(401);
    expect(problem).to.include({ code: 'unauthorized' });
    expect(response!.headers.get('www-authenticate')).to.equal(error ? `Bearer error="${error}"` : 'Bearer');
  };
  const sidOf = (token: string) => (jwt.decode(token) as jwt.JwtPayload).sid as string;
  // Signed for the user's own session unless the claims say otherwise. `noExp` leaves the exp
  // claim out (or to the claims given), since jsonwebtoken refuses an undefined expiresIn.
  const sign = (claims: object, opts: jwt.SignOptions = {}, secret = SECRET, noExp = false) => {
    const options: jwt.SignOptions = {
      algorithm: 'HS256',
      subject: user.id,
      issuer: 'rst',
      audience: 'rst-api',
      ...opts,
    };
    if (!noExp) options.expiresIn ??= 600;
    return jwt.sign({ sid: sidOf(user.token), ...claims }, secret, options);
  };

  it('returns every field of the account summary', async () => {
    const { data, response } = await getAccount({ client: server.as(user.token) });
    expect(response!.status).to.equal(200);
    expect(data).to.deep.equal({
      id: user.id,
      username: user.username,
      email: user.email,
      email_verified: true,
      plan: 'free',
      plan_source: 'default',
      google_linked: false,
      has_password: true,
      can_unlink_google: false,
      available_sign_in_methods: ['password'],
      created_at: data!.created_at,
    });
  });

  it('carries the documented claims: sub, iat, exp, iss, aud, jti and the session id', () => {
    const claims = jwt.decode(user.token, { complete: true })!;
    expect(claims.header.alg).to.equal('HS256');
    expect(claims.payload).to.include({ sub: user.id, iss: 'rst', aud: 'rst-api' });
    expect((claims.payload as jwt.JwtPayload).sid).to.match(/^[0-9a-f-]{36}$/);
    const p = claims.payload as jwt.JwtPayload;
    expect(p.exp! - p.iat!).to.equal(3600);
    expect(p.jti).to.match(/^[0-9a-f-]{36}$/);
  });

  it('answers 401 with a plain Bearer challenge when no credential is sent', async () => {
    const { response, error } = await getAccount({ client: server.client });
    expect(response!.status).to.equal(401);
    expect(error).to.include({ code: 'unauthorized' });
    expect(response!.headers.get('www-authenticate')).to.equal('Bearer');
  });

  it('accepts a token it signed itself (the control for the refusals below)', async () => {
    const { response } = await getAccount({ client: server.as(sign({})) });
    expect(response!.status).to.equal(200);
  });

  it('refuses a tampered token', async () => {
    const [h, p, s] = user.token.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
    payload.sub = '00000000-0000-4000-8000-000000000000';
    await refused(`${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`);
    await refused(`${h}.${p}.${s!.slice(0, -2)}xx`);
  });

  it('refuses alg:none', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const payload = user.token.split('.')[1];
    await refused(`${header}.${payload}.`);
    await refused(`${header}.${payload}`);
  });

  it('refuses an expired token', async () => {
    await refused(sign({ exp: Math.floor(Date.now() / 1000) - 10 }, {}, SECRET, true));
  });

  it('refuses a token it accepted before, once it has expired', async function () {
    this.timeout(10_000);
    // Accepted tokens are remembered (lib/jwt.ts): the expiry must still be checked on every use.
    const exp = Math.floor(Date.now() / 1000) + 2;
    const token = sign({ exp }, {}, SECRET, true);
    expect((await getAccount({ client: server.as(token) })).response!.status).to.equal(200);
    expect((await getAccount({ client: server.as(token) })).response!.status).to.equal(200);
    await sleep(exp * 1000 - Date.now() + 50);
    await refused(token);
  });

  it('refuses a query string the operation does not declare, with the parameter named', async () => {
    // GET /v1/me/account has no parameters; skipping its (empty) validation must not let one through.
    const res = await fetch(`${server.url}/v1/me/account?debug=1`, {
      headers: { authorization: `Bearer ${user.token}` },
    });
    expect(res.status).to.equal(400);
    const problem = (await res.json()) as { code: string; errors: { path: string; message: string }[] };
    expect(problem.code).to.equal('validation_failed');
    expect(JSON.stringify(problem.errors)).to.include('debug');
    const plain = await fetch(`${server.url}/v1/me/account`, { headers: { authorization: `Bearer ${user.token}` } });
    expect(plain.status).to.equal(200);
  });

  it('refuses a token without exp', async () => {
    const token = sign({}, {}, SECRET, true);
    expect(jwt.decode(token)).to.not.have.property('exp');
    await refused(token);
  });

  it('refuses a wrong issuer, a wrong audience and a wrong key', async () => {
    await refused(sign({}, { issuer: 'someone-else' }));
    await refused(sign({}, { audience: 'other-api' }));
    await refused(sign({}, {}, 'another-secret-another-secret-another-secret'));
  });

  it('refuses another algorithm even with the right key (HS512)', async () => {
    await refused(sign({}, { algorithm: 'HS512' }));
  });

  it("refuses a token without a session, with an unknown one, or naming another account's", async () => {
    const { sid: _sid, ...noSid } = jwt.decode(sign({}), { json: true })!;
    await refused(jwt.sign(noSid, SECRET, { algorithm: 'HS256' }));
    await refused(sign({ sid: '00000000-0000-4000-8000-000000000000' }));
    await refused(sign({ sid: 'not-a-uuid' }));
    await refused(sign({ sid: 7 }));
    const other = await registeredUser(server, 'acct2');
    await refused(sign({ sid: sidOf(other.token) }));
    // The control: the other account's token itself is good.
    expect((await getAccount({ client: server.as(other.token) })).response!.status).to.equal(200);
  });

  it('refuses a token for an account that does not exist', async () => {
    await refused(sign({}, { subject: '00000000-0000-4000-8000-000000000000' }));
    await refused(sign({}, { subject: 'not-a-uuid' }));
  });

  it('refuses garbage, an empty bearer and another scheme', async () => {
    await refused('garbage');
    for (const header of ['Bearer', 'Basic dXNlcjpwYXNz', 'Bearer a b']) {
      const res = await fetch(`${server.url}/v1/me/account`, { headers: { authorization: header } });
      expect(res.status, header).to.equal(401);
      expect(res.headers.get('www-authenticate')).to.equal('Bearer error="invalid_token"');
      expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
    }
  });
});
