// MANAGEMENT_PORT: /healthz, /readyz and /metrics on a listener of their own (bound to
// MANAGEMENT_HOST, 127.0.0.1 by default), so the public port serves no /metrics at all and a
// scraper inside the network needs no token unless one is set. Started here as production would
// start it: secrets from files (*_FILE), never in the environment.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { getAccount, login } from '../generated/sdk.gen.ts';
import { validatingFetch } from './support/contract.ts';
import { DB_LABEL, freshDatabase } from './support/database.ts';
import { startServer, TEST_ENV, type TestServer } from './support/server.ts';
import { registeredUser } from './support/users.ts';

const TOKEN = 'management-token-0123456789abcdef';

describe(`management port (${DB_LABEL})`, () => {
  describe('with secrets from files and METRICS_TOKEN_FILE', () => {
    let server: TestServer;
    let dir: string;
    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rst-secrets-'));
      const secret = (name: string, value: string) => {
        const file = path.join(dir, name);
        fs.writeFileSync(file, `${value}\n`, { mode: 0o600 });
        return file;
      };
      // The database is created first, so that its URL can come from a file too (on PostgreSQL).
      const database = await freshDatabase();
      const env: Record<string, string> = {
        JWT_SECRET: '',
        JWT_SECRET_FILE: secret('jwt_secret', TEST_ENV.JWT_SECRET!),
        METRICS_TOKEN_FILE: secret('metrics_token', TOKEN),
        MANAGEMENT_PORT: '0',
      };
      if (database.url) env.DATABASE_URL_FILE = secret('database_url', database.url);
      server = await startServer({ database, env });
    });
    after(async () => {
      await server?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('prints the management URL on its own port, on 127.0.0.1', () => {
      expect(server.managementUrl).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(new URL(server.managementUrl!).port).to.not.equal(new URL(server.url).port);
    });

    it('serves /metrics there for the token from the file, and 404 without it', async () => {
      // Something to count first: a sign-in on the public port with the JWT secret from its file.
      const user = await registeredUser(server, 'mgmt');
      await getAccount({ client: server.as(user.token), throwOnError: true });
      // Signed with the secret from its file (without one the server would have made its own).
      expect(() => jwt.verify(user.token, TEST_ENV.JWT_SECRET!, { algorithms: ['HS256'] })).not.to.throw();
      const res = await fetch(`${server.managementUrl}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      expect(text).to.match(/^rst_http_requests_total\{operation="getAccount",status="200"\} [1-9]/m);
      expect(text).to.match(/^rst_outbox_pending \d+/m);
      for (const headers of [{}, { Authorization: 'Bearer wrong-token-0123456789abcdef' }] as Record<
        string,
        string
      >[]) {
        const refused = await fetch(`${server.managementUrl}/metrics`, { headers });
        expect(refused.status).to.equal(404);
      }
    });

    it('no longer serves /metrics on the public port, not even for the token', async () => {
      const res = await validatingFetch(`${server.url}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      expect(res.status).to.equal(404);
      expect(await res.json()).to.include({ code: 'not_found' });
    });

    it('serves /healthz and /readyz there as on the public port, and nothing else', async () => {
      for (const probe of ['healthz', 'readyz']) {
        const res = await validatingFetch(`${server.managementUrl}/${probe}`);
        expect(res.status).to.equal(200);
        expect(await res.json()).to.deep.equal({ status: 'ok' });
        expect(res.headers.get('x-request-id')).to.be.a('string');
      }
      for (const p of ['/v1/me/account', '/docs', '/openapi.json', '/v1/auth/login']) {
        const res = await fetch(`${server.managementUrl}${p}`);
        expect(res.status, p).to.equal(404);
        expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
      }
      // The API itself stays on the public port.
      const { response } = await login({
        client: server.client,
        body: { username: 'nobody', password: 'wrong password' },
      });
      expect(response!.status).to.equal(401);
    });
  });

  describe('without METRICS_TOKEN', () => {
    let server: TestServer;
    before(async () => {
      server = await startServer({ env: { MANAGEMENT_PORT: '0' } });
    });
    after(async () => {
      await server?.stop();
    });

    it('serves /metrics there to anyone (the port is not on the internet), and not on the public port', async () => {
      const res = await fetch(`${server.managementUrl}/metrics`);
      expect(res.status).to.equal(200);
      expect(await res.text()).to.match(/^process_cpu_user_seconds_total /m);
      expect((await fetch(`${server.url}/metrics`)).status).to.equal(404);
    });
  });
});
