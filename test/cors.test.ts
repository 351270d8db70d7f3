import { expect } from 'chai';
import { DB_LABEL } from './support/database.ts';
import { startServer, type TestServer } from './support/server.ts';
import { registeredUser } from './support/users.ts';

const APP = 'https://app.example.test';
const DEV = 'http://localhost:5173';

const preflight = (server: TestServer, path: string, origin: string, method = 'POST', headers = 'content-type') =>
  fetch(`${server.url}${path}`, {
    method: 'OPTIONS',
    headers: { Origin: origin, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': headers },
  });

const allowed = (value: string | null) => (value ?? '').split(',').map((s) => s.trim().toLowerCase());

describe(`CORS (${DB_LABEL})`, () => {
  describe('with CORS_ORIGINS listing two origins', () => {
    let server: TestServer;
    before(async () => {
      // The trailing slash is how people paste origins; config normalises it away.
      server = await startServer({ env: { CORS_ORIGINS: ` ${APP}/ , ${DEV}` } });
    });
    after(async () => {
      await server.stop();
    });

    it('passes a preflight from an allowed origin with the SDK headers and methods', async () => {
      const res = await preflight(
        server,
        '/v1/auth/api-keys',
        APP,
        'POST',
        'authorization, content-type, x-api-key, x-request-id',
      );
      expect(res.status).to.equal(204);
      expect(res.headers.get('access-control-allow-origin')).to.equal(APP);
      expect(allowed(res.headers.get('access-control-allow-headers'))).to.include.members([
        'authorization',
        'content-type',
        'x-api-key',
        'x-request-id',
      ]);
      expect(allowed(res.headers.get('access-control-allow-methods'))).to.include.members(['get', 'post', 'delete']);
      expect(Number(res.headers.get('access-control-max-age'))).to.be.greaterThan(0);
      // Tokens travel in headers, never cookies: no ambient credentials for any origin.
      expect(res.headers.get('access-control-allow-credentials')).to.equal(null);
      expect(res.headers.get('vary') ?? '').to.match(/origin/i);
    });

    it('passes a preflight from the second listed origin (DELETE of a key)', async () => {
      const res = await preflight(
        server,
        '/v1/auth/api-keys/6f1c1d8e-2b7a-4c1e-9f3a-1d2e3f4a5b6c',
        DEV,
        'DELETE',
        'authorization',
      );
      expect(res.status).to.equal(204);
      expect(res.headers.get('access-control-allow-origin')).to.equal(DEV);
    });

    it('gives a preflight from another origin no Access-Control-Allow-Origin', async () => {
      for (const origin of [
        'https://evil.example.test',
        `${APP}.evil.test`,
        'http://app.example.test',
        'https://app.example.test:8443',
        'null',
      ]) {
        const res = await preflight(server, '/v1/auth/login', origin);
        expect(res.headers.get('access-control-allow-origin'), origin).to.equal(null);
        expect(res.headers.get('access-control-allow-headers'), origin).to.equal(null);
        expect(res.status, origin).to.not.equal(204);
      }
    });

    it('lets an allowed origin read a real response and its exposed headers (401 with WWW-Authenticate)', async () => {
      const res = await fetch(`${server.url}/v1/me/account`, {
        headers: { Origin: APP, 'X-Request-Id': 'cors-check-1' },
      });
      expect(res.status).to.equal(401);
      expect(res.headers.get('access-control-allow-origin')).to.equal(APP);
      expect(allowed(res.headers.get('access-control-expose-headers'))).to.include.members([
        'x-request-id',
        'retry-after',
        'www-authenticate',
      ]);
      expect(res.headers.get('x-request-id')).to.equal('cors-check-1');
      expect(((await res.json()) as { code: string }).code).to.equal('unauthorized');
    });

    it('adds the CORS headers to errors raised before routing (415 on a non-JSON body)', async () => {
      const res = await fetch(`${server.url}/v1/auth/login`, {
        method: 'POST',
        headers: { Origin: DEV, 'Content-Type': 'text/plain' },
        body: 'hello',
      });
      expect(res.status).to.equal(415);
      expect(res.headers.get('access-control-allow-origin')).to.equal(DEV);
    });

    it('serves an authenticated call from an allowed origin', async () => {
      const user = await registeredUser(server, 'cors');
      const res = await fetch(`${server.url}/v1/me/account`, {
        headers: { Origin: APP, Authorization: `Bearer ${user.token}` },
      });
      expect(res.status).to.equal(200);
      expect(res.headers.get('access-control-allow-origin')).to.equal(APP);
      expect(((await res.json()) as { username: string }).username).to.equal(user.username);
    });

    it('answers a request from another origin without any Access-Control-* header', async () => {
      const res = await fetch(`${server.url}/v1/me/account`, { headers: { Origin: 'https://evil.example.test' } });
      expect(res.status).to.equal(401);
      expect([...res.headers.keys()].filter((h) => h.startsWith('access-control-'))).to.deep.equal([]);
    });
  });

  describe('with no CORS_ORIGINS (the default)', () => {
    let server: TestServer;
    before(async () => {
      server = await startServer();
    });
    after(async () => {
      await server.stop();
    });

    it('sends no CORS header at all, to a preflight or a request', async () => {
      const pre = await preflight(server, '/v1/auth/login', APP);
      const res = await fetch(`${server.url}/healthz`, { headers: { Origin: APP } });
      expect(res.status).to.equal(200);
      for (const r of [pre, res]) {
        expect([...r.headers.keys()].filter((h) => h.startsWith('access-control-'))).to.deep.equal([]);
        expect(r.headers.get('vary') ?? '').to.not.match(/origin/i);
      }
      expect(pre.status).to.equal(405);
    });

    it('marks API responses nosniff', async () => {
      const res = await fetch(`${server.url}/v1/me/account`);
      expect(res.status).to.equal(401);
      expect(res.headers.get('x-content-type-options')).to.equal('nosniff');
    });
  });
});
