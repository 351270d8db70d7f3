import { expect } from 'chai';
import { createApiKey, healthz, listApiKeys, readyz, revokeApiKey } from '../generated/sdk.gen.ts';
import { checkResponse, validatingFetch } from './support/contract.ts';
import { DB_LABEL } from './support/database.ts';
import { startServer, type TestServer } from './support/server.ts';
import { registeredUser } from './support/users.ts';

describe(`HTTP behaviour shared by every endpoint (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server.stop();
  });

  const post = (p: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    validatingFetch(`${server.url}${p}`, { method: 'POST', headers, body });

  it('answers malformed JSON with 400 invalid_json', async () => {
    for (const body of ['{bad', '{"username": "a",}', '"just a string"', '[1, 2', 'nul']) {
      const res = await post('/v1/auth/login', body);
      expect(res.status, body).to.equal(400);
      expect((await res.json()).code, body).to.be.oneOf(['invalid_json', 'validation_failed']);
    }
    const res = await post('/v1/auth/login', '{bad');
    expect((await res.json()).code).to.equal('invalid_json');
  });

  it('answers an unknown field with 400 validation_failed naming it', async () => {
    const res = await post('/v1/auth/login', JSON.stringify({ username: 'a', password: 'b', role: 'admin' }));
    expect(res.status).to.equal(400);
    const problem = await res.json();
    expect(problem.code).to.equal('validation_failed');
    expect(problem.errors).to.deep.include({ path: '/body/role', message: 'is not allowed here' });
  });

  it('answers a body that is not JSON with 415', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await post('/v1/auth/login', 'username=a&password=b', { 'content-type': type });
      expect(res.status, type).to.equal(415);
      expect((await res.json()).code).to.equal('unsupported_media_type');
    }
    const none = await validatingFetch(`${server.url}/v1/auth/login`, { method: 'POST', body: new Blob(['{}']) });
    expect(none.status).to.equal(415);
  });

  it('answers an oversized body with 413', async () => {
    const res = await post('/v1/auth/login', JSON.stringify({ username: 'a', password: 'x'.repeat(100_000) }));
    expect(res.status).to.equal(413);
    expect((await res.json()).code).to.equal('payload_too_large');
  });

  it('answers an unknown path with 404 not_found and a wrong method with 405 and Allow', async () => {
    const missing = await validatingFetch(`${server.url}/v1/nothing-here`);
    expect(missing.status).to.equal(404);
    expect((await missing.json()).code).to.equal('not_found');
    const wrong = await validatingFetch(`${server.url}/v1/auth/login`, { method: 'GET' });
    expect(wrong.status).to.equal(405);
    expect(wrong.headers.get('allow')).to.equal('POST');
    expect((await wrong.json()).code).to.equal('method_not_allowed');
    const keys = await validatingFetch(`${server.url}/v1/auth/api-keys`, { method: 'PUT' });
    expect(keys.headers.get('allow')).to.equal('GET, HEAD, POST');
  });

  it('echoes a valid X-Request-Id and replaces an invalid one', async () => {
    const ok = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'trace-1234:abc.DEF_9' } });
    expect(ok.headers.get('x-request-id')).to.equal('trace-1234:abc.DEF_9');
    for (const bad of ['has space', 'x'.repeat(129), 'semi;colon']) {
      const res = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': bad } });
      expect(res.headers.get('x-request-id')).to.match(/^[0-9a-f-]{36}$/);
    }
  });

  it('serves /healthz and /readyz', async () => {
    expect((await healthz({ client: server.client })).data).to.deep.equal({ status: 'ok' });
    expect((await readyz({ client: server.client })).data).to.deep.equal({ status: 'ok' });
  });

  it('serves the contract it routes by as YAML and JSON', async () => {
    const yaml = await fetch(`${server.url}/openapi.yaml`);
    expect(yaml.status).to.equal(200);
    expect(await yaml.text()).to.match(/^openapi: 3\.0\.3/);
    const json = await (await fetch(`${server.url}/openapi.json`)).json();
    expect(json.openapi).to.equal('3.0.3');
    expect(Object.keys(json.paths)).to.include.members(['/v1/auth/register', '/v1/me/account', '/v1/me/google/unlink']);
  });

  it('answers HEAD wherever GET is answered: same status and headers, no body', async () => {
    const user = await registeredUser(server, 'head');
    const cases: [string, Record<string, string>, number, string][] = [
      ['/healthz', {}, 200, 'application/json'],
      ['/readyz', {}, 200, 'application/json'],
      ['/v1/me/account', { authorization: `Bearer ${user.token}` }, 200, 'application/json'],
      ['/v1/me/account', {}, 401, 'application/problem+json'],
      ['/v1/auth/api-keys', { authorization: `Bearer ${user.token}` }, 200, 'application/json'],
      ['/openapi.json', {}, 200, 'application/json'],
      ['/openapi.yaml', {}, 200, 'application/yaml'],
      ['/docs', {}, 200, 'text/html'],
    ];
    for (const [p, headers, status, type] of cases) {
      const head = await fetch(`${server.url}${p}`, { method: 'HEAD', headers });
      const get = await fetch(`${server.url}${p}`, { headers });
      expect(head.status, `HEAD ${p}`).to.equal(status);
      expect(get.status, `GET ${p}`).to.equal(status);
      expect(head.headers.get('content-type'), `HEAD ${p}`).to.satisfy((t: string | null) => t?.startsWith(type));
      expect(head.headers.get('x-request-id'), `HEAD ${p}`).to.be.a('string');
      expect(await head.text(), `HEAD ${p} has no body`).to.equal('');
      await get.arrayBuffer();
    }
    const noAuth = await fetch(`${server.url}/v1/me/account`, { method: 'HEAD' });
    expect(noAuth.headers.get('www-authenticate')).to.equal('Bearer');
    // Where GET is not answered, neither is HEAD.
    const login = await fetch(`${server.url}/v1/auth/login`, { method: 'HEAD' });
    expect(login.status).to.equal(405);
    expect(login.headers.get('allow')).to.equal('POST');
    const account = await validatingFetch(`${server.url}/v1/me/account`, { method: 'DELETE' });
    expect(account.status).to.equal(405);
    expect(account.headers.get('allow')).to.equal('GET, HEAD');
  });

  it('answers another method on the published contract with 405 and Allow, not 404', async () => {
    for (const p of ['/openapi.json', '/openapi.yaml']) {
      for (const method of ['POST', 'PUT', 'DELETE']) {
        const res = await validatingFetch(`${server.url}${p}`, {
          method,
          headers: { 'content-type': 'application/json' },
          body: '{}',
        });
        expect(res.status, `${method} ${p}`).to.equal(405);
        expect(res.headers.get('allow')).to.equal('GET, HEAD');
        expect((await res.json()).code).to.equal('method_not_allowed');
      }
    }
  });

  it('refuses other JSON media types with 415 instead of half-accepting them', async () => {
    const body = JSON.stringify({ username: 'nobody-here', password: 'not the password' });
    for (const type of [
      'application/merge-patch+json',
      'application/vnd.api+json',
      'application/json-patch+json',
      'application/problem+json',
      'application/scim+json',
    ]) {
      const res = await post('/v1/auth/login', body, { 'content-type': type });
      expect(res.status, type).to.equal(415);
      expect((await res.json()).code, type).to.equal('unsupported_media_type');
    }
    for (const type of ['application/json', 'application/json; charset=utf-8', 'Application/JSON']) {
      const res = await post('/v1/auth/login', body, { 'content-type': type });
      expect(res.status, type).to.equal(401);
      expect((await res.json()).code, type).to.equal('invalid_credentials');
    }
  });

  it('reads ids only in the canonical UUID form, in either case; other spellings are 400', async () => {
    const user = await registeredUser(server, 'uuid');
    const client = server.as(user.token);
    const mint = async () => (await createApiKey({ client, body: { name: 'k' }, throwOnError: true })).data.id;
    const id = await mint();
    for (const spelling of [
      `urn:uuid:${id}`,
      `URN:UUID:${id}`,
      `{${id}}`,
      `%7B${id}%7D`,
      id.replaceAll('-', ''),
      `${id.slice(0, 8)}${id.slice(9)}`,
      `${id}%20`,
      `%20${id}`,
      `${id}0`,
      id.replace(/[0-9a-f]$/, 'g'),
    ]) {
      const res = await validatingFetch(`${server.url}/v1/auth/api-keys/${spelling}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${user.token}` },
      });
      expect(res.status, spelling).to.equal(400);
      expect((await res.json()).code, spelling).to.equal('validation_failed');
    }
    const listed = await listApiKeys({ client, throwOnError: true });
    expect(listed.data.items.map((k) => k.id)).to.include(id);
    // Uppercase is the same UUID (RFC 9562 reads either case): accepted, and it revokes the key.
    const upper = await revokeApiKey({ client, path: { key_id: id.toUpperCase() } });
    expect(upper.response!.status).to.equal(204);
    const again = await revokeApiKey({ client, path: { key_id: id } });
    expect(again.response!.status).to.equal(404);
  });

  it('never answers 500 for odd but well-formed requests', async () => {
    const odd = [
      post('/v1/auth/login', JSON.stringify({ username: '\u0000', password: '\ud800' })),
      post('/v1/auth/login', JSON.stringify({ username: 'a'.repeat(254), password: 'ü'.repeat(256) })),
      post('/v1/auth/register', JSON.stringify({ username: 'abc', email: 'a@b.c', password: null })),
      post('/v1/auth/verify-email', JSON.stringify({ email: 'a@b.c', code: '１２３４５６' })),
      validatingFetch(`${server.url}/v1/auth/api-keys/${'%ZZ'}`, { method: 'DELETE' }),
    ];
    for (const res of await Promise.all(odd)) expect(res.status).to.be.lessThan(500);
  });
});

describe('the harness itself', () => {
  it('rejects a response the contract does not allow', async () => {
    const headers = { 'content-type': 'application/json', 'x-request-id': 'r1' };
    const wrongShape = new Response(JSON.stringify({ access_token: 'x' }), { status: 200, headers });
    let thrown: unknown;
    try {
      await checkResponse('POST', 'http://127.0.0.1/v1/auth/login', wrongShape);
    } catch (err) {
      thrown = err;
    }
    expect(String(thrown)).to.match(/does not match the contract/);
    const serverError = new Response(JSON.stringify({ type: 'x', title: 'x', status: 500, code: 'internal_error' }), {
      status: 500,
      headers: { ...headers, 'content-type': 'application/problem+json' },
    });
    thrown = undefined;
    try {
      await checkResponse('GET', 'http://127.0.0.1/v1/me/account', serverError);
    } catch (err) {
      thrown = err;
    }
    expect(String(thrown)).to.match(/server error/);
  });
});
