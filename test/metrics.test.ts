// GET /metrics: Prometheus text from prom-client, for a scraper holding METRICS_TOKEN, and an
// ordinary 404 problem for everyone else (and for everyone when no token is configured). Counts
// requests by operation and status, latency, failed sign-ins, refused credentials, rate-limit hits,
// and reads the outbox backlog from the database at scrape time.
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import YAML from 'yaml';
import { getAccount, login, register } from '../generated/sdk.gen.ts';
import { validatingFetch } from './support/contract.ts';
import { DB_LABEL } from './support/database.ts';
import { startSmtp, type TestSmtp } from './support/mail.ts';
import { ROOT, startServer, type TestServer } from './support/server.ts';
import { uniqueUser } from './support/users.ts';
import { waitFor } from './support/wait.ts';
import { METRICS_TOKEN, scrape } from './support/metrics.ts';

const TOKEN = METRICS_TOKEN;

describe(`metrics (${DB_LABEL})`, () => {
  describe('without METRICS_TOKEN (the default)', () => {
    let server: TestServer;
    before(async () => {
      server = await startServer();
    });
    after(async () => {
      await server?.stop();
    });

    it('does not exist: GET /metrics is the same 404 not_found as any unknown path, with or without a token', async () => {
      for (const headers of [{}, { Authorization: `Bearer ${TOKEN}` }] as Record<string, string>[]) {
        const res = await validatingFetch(`${server.url}/metrics`, { headers });
        expect(res.status).to.equal(404);
        expect(await res.json()).to.include({ code: 'not_found' });
      }
    });

    it('is not part of the contract', () => {
      const spec = YAML.parse(fs.readFileSync(path.join(ROOT, 'openapi.yaml'), 'utf8'));
      expect(Object.keys(spec.paths)).not.to.include('/metrics');
    });
  });

  describe('with METRICS_TOKEN', () => {
    let server: TestServer;
    let smtp: TestSmtp;
    before(async () => {
      // Mail goes to an SMTP server that is down at first, so the outbox has a backlog to show.
      smtp = await startSmtp();
      await smtp.down();
      server = await startServer({ env: { METRICS_TOKEN: TOKEN, SMTP_URL: smtp.url, RATE_LIMIT_LOGIN_IP: '2/900' } });
    });
    after(async () => {
      await server?.stop();
      await smtp?.close();
    });

    it('answers 404 without the token, with a wrong one, another scheme or another method', async () => {
      const attempts: [string, Record<string, string>][] = [
        ['GET', {}],
        ['GET', { Authorization: 'Bearer wrong-token-wrong-token-00' }],
        ['GET', { Authorization: `Bearer ${TOKEN}x` }],
        ['GET', { Authorization: `Basic ${Buffer.from(`metrics:${TOKEN}`).toString('base64')}` }],
        ['GET', { 'X-API-Key': TOKEN }],
        ['POST', { Authorization: `Bearer ${TOKEN}` }],
        ['DELETE', { Authorization: `Bearer ${TOKEN}` }],
      ];
      for (const [method, headers] of attempts) {
        const res = await validatingFetch(`${server.url}/metrics`, { method, headers });
        expect(res.status, `${method} ${JSON.stringify(headers)}`).to.equal(404);
        expect(await res.json()).to.include({ code: 'not_found' });
      }
    });

    it('counts requests by operation and status, with a latency histogram', async () => {
      const before = await scrape(server);
      const count = (m: Map<string, number>, key: string) => m.get(key) ?? 0;
      for (let i = 0; i < 3; i++)
        await register({ client: server.client, body: uniqueUser('met'), throwOnError: true });
      await validatingFetch(`${server.url}/no/such/path/${Date.now()}`);
      const after = await scrape(server);
      const created = 'rst_http_requests_total{operation="register",status="201"}';
      expect(count(after, created) - count(before, created)).to.equal(3);
      expect(
        count(after, 'rst_http_request_duration_seconds_count{operation="register"}') -
          count(before, 'rst_http_request_duration_seconds_count{operation="register"}'),
      ).to.equal(3);
      expect(after.get('rst_http_request_duration_seconds_bucket{le="+Inf",operation="register"}')).to.equal(
        after.get('rst_http_request_duration_seconds_count{operation="register"}'),
      );
      expect(after.get('rst_http_request_duration_seconds_sum{operation="register"}')).to.be.above(0);
      // Unknown paths share one label value: a scanner cannot create series.
      expect(count(after, 'rst_http_requests_total{operation="unmatched",status="404"}')).to.be.at.least(1);
      expect([...after.keys()].some((k) => k.includes('/no/such/path'))).to.equal(false);
      // Process metrics come along.
      expect(after.has('process_cpu_seconds_total')).to.equal(true);
    });

    it('counts failed sign-ins, refused credentials and rate-limit hits', async () => {
      const before = await scrape(server);
      const delta = (after: Map<string, number>, key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
      for (let i = 0; i < 3; i++)
        await login({
          client: server.client,
          body: { username: uniqueUser('met').username, password: 'wrong password' },
        });
      await getAccount({ client: server.as('not-a-token') });
      await getAccount({ client: server.client });
      const after = await scrape(server);
      expect(delta(after, 'rst_login_failures_total')).to.equal(2);
      expect(delta(after, 'rst_rate_limited_total{operation="login"}')).to.equal(1);
      expect(delta(after, 'rst_http_requests_total{operation="login",status="429"}')).to.equal(1);
      expect(delta(after, 'rst_auth_failures_total'), 'only the refused token, not the missing one').to.equal(1);
      expect(delta(after, 'rst_http_requests_total{operation="getAccount",status="401"}')).to.equal(2);
    });

    it('shows the outbox backlog and failing deliveries, read at scrape time, and their recovery', async () => {
      const user = uniqueUser('backlog');
      await register({ client: server.client, body: user, throwOnError: true });
      let samples = await waitFor(async () => {
        const now = await scrape(server);
        return now.get('rst_outbox_retrying')! >= 1 && now;
      }, 'a delivery retrying');
      expect(samples.get('rst_outbox_pending')).to.be.at.least(1);
      expect(samples.get('rst_outbox_retrying')).to.be.at.least(1);
      expect(samples.get('rst_outbox_oldest_pending_seconds')).to.be.above(0);
      expect(samples.get('rst_mail_delivery_failures_total'), 'failed attempts counted').to.be.at.least(1);

      await smtp.up();
      await smtp.waitFor(user.email, 1, 30_000);
      samples = await waitFor(async () => {
        const now = await scrape(server);
        return now.get('rst_outbox_pending') === 0 && now;
      }, 'the outbox drained');
      expect(samples.get('rst_outbox_pending')).to.equal(0);
      expect(samples.get('rst_outbox_retrying')).to.equal(0);
      expect(samples.get('rst_outbox_oldest_pending_seconds')).to.equal(0);
    });
  });
});
