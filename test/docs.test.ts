import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createApiKey } from '../generated/sdk.gen.ts';
import { DB_LABEL } from './support/database.ts';
import { ROOT, startServer, type TestServer } from './support/server.ts';
import { registeredUser } from './support/users.ts';

// Debian's chromium package; CHROMIUM_PATH points elsewhere (another distribution, or a missing path to see the skip).
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
];
const ARTIFACTS = path.join(ROOT, '.artifacts');
const ASSETS = [
  'swagger-ui-bundle.js',
  'swagger-ui.css',
  'rst-docs.js',
  'rst-docs.css',
  'favicon-32x32.png',
  'favicon-16x16.png',
];

const sha256 = (buf: Buffer | ArrayBuffer) =>
  createHash('sha256')
    .update(Buffer.from(buf as ArrayBuffer))
    .digest('hex');

function expectDocsSecurityHeaders(res: Response, what: string): void {
  const csp = res.headers.get('content-security-policy') ?? '';
  const directives = new Map(
    csp
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .map(([name, ...values]) => [name!, values.join(' ')]),
  );
  expect(directives.get('default-src'), `${what} default-src`).to.equal("'self'");
  expect(directives.get('script-src'), `${what} script-src`).to.equal("'self'");
  expect(directives.get('style-src'), `${what} style-src`).to.equal("'self' 'unsafe-inline'");
  expect(directives.get('img-src'), `${what} img-src`).to.equal("'self' data:");
  expect(directives.get('frame-ancestors'), `${what} frame-ancestors`).to.equal("'none'");
  expect(csp, what).to.not.match(/unsafe-eval|\*|https?:/);
  expect(res.headers.get('x-content-type-options'), what).to.equal('nosniff');
  expect(res.headers.get('referrer-policy'), what).to.equal('no-referrer');
}

describe(`docs (${DB_LABEL})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  describe('the page and its assets over HTTP', () => {
    it('serves /docs as an HTML page titled "rst auth API" with no inline script, under a strict CSP', async () => {
      const res = await fetch(`${server.url}/docs`);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^text\/html/);
      expectDocsSecurityHeaders(res, '/docs');
      const html = await res.text();
      expect(html).to.include('<title>rst auth API</title>');
      const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
      expect(scripts.map((m) => /\bsrc="([^"]+)"/.exec(m[1]!)?.[1])).to.deep.equal([
        'docs/assets/swagger-ui-bundle.js',
        'docs/assets/rst-docs.js',
      ]);
      for (const m of scripts) expect(m[2]!.trim(), 'inline script body').to.equal('');
      expect(html).to.not.match(/\son[a-z]+="/i); // no inline event handlers either
      expect(html).to.not.match(/(src|href)="(https?:)?\/\//); // nothing from another host
    });

    it('serves every asset the page names from the installed swagger-ui-dist, with the same headers', async () => {
      const html = await (await fetch(`${server.url}/docs`)).text();
      const named = [...html.matchAll(/(?:src|href)="(docs\/assets\/[^"]+)"/g)].map((m) =>
        m[1]!.slice('docs/assets/'.length),
      );
      expect(named.sort()).to.deep.equal([...ASSETS].sort());
      const types: Record<string, RegExp> = { js: /^text\/javascript/, css: /^text\/css/, png: /^image\/png$/ };
      for (const name of ASSETS) {
        const res = await fetch(`${server.url}/docs/assets/${name}`);
        expect(res.status, name).to.equal(200);
        expect(res.headers.get('content-type'), name).to.match(types[name.split('.').pop()!]!);
        expectDocsSecurityHeaders(res, name);
        const body = await res.arrayBuffer();
        if (!name.startsWith('rst-docs')) {
          expect(sha256(body), name).to.equal(
            sha256(fs.readFileSync(path.join(ROOT, 'node_modules/swagger-ui-dist', name))),
          );
        }
      }
    });

    it('initialises Swagger UI on the served contract with opt-in persistent authorization and no outside validator', async () => {
      const js = await (await fetch(`${server.url}/docs/assets/rst-docs.js`)).text();
      expect(js).to.match(/url:\s*'openapi\.json'/);
      expect(js).to.match(/persistAuthorization:\s*remember/);
      expect(js).to.match(/validatorUrl:\s*null/);
    });

    it('answers a repeated load with 304 from its ETag', async () => {
      const first = await fetch(`${server.url}/docs/assets/swagger-ui.css`);
      const etag = first.headers.get('etag');
      expect(etag).to.match(/^"[^"]+"$/);
      expect(first.headers.get('cache-control')).to.equal('no-cache');
      const again = await fetch(`${server.url}/docs/assets/swagger-ui.css`, { headers: { 'If-None-Match': etag! } });
      expect(again.status).to.equal(304);
      const other = await fetch(`${server.url}/docs/assets/swagger-ui.css`, {
        headers: { 'If-None-Match': '"stale"' },
      });
      expect(other.status).to.equal(200);
    });

    it('redirects /docs/ to /docs, where the relative asset URLs resolve', async () => {
      const res = await fetch(`${server.url}/docs/`, { redirect: 'manual' });
      expect(res.status).to.equal(301);
      expect(new URL(res.headers.get('location')!, `${server.url}/docs/`).pathname).to.equal('/docs');
    });

    it('serves nothing else under /docs/assets: unknown names and traversal attempts are 404 problems', async () => {
      for (const p of [
        '/docs/assets/index.html',
        '/docs/assets/swagger-initializer.js',
        '/docs/assets/..%2f..%2fpackage.json',
        '/docs/assets/%2e%2e/%2e%2e/package.json',
        '/docs/assets/',
        '/docs/assets/swagger-ui.css/',
      ]) {
        const res = await fetch(`${server.url}${p}`);
        expect(res.status, p).to.equal(404);
        expect(res.headers.get('content-type'), p).to.match(/^application\/problem\+json/);
        expect(((await res.json()) as { code: string }).code, p).to.equal('not_found');
      }
    });

    it('answers another method on /docs with 405 and Allow: GET, HEAD', async () => {
      const res = await fetch(`${server.url}/docs`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{}',
      });
      expect(res.status).to.equal(405);
      expect(res.headers.get('allow')).to.equal('GET, HEAD');
      expect(((await res.json()) as { code: string }).code).to.equal('method_not_allowed');
    });
  });

  describe('in headless Chromium', () => {
    let context: BrowserContext;
    let page: Page;
    let profile: string;
    let user: Awaited<ReturnType<typeof registeredUser>>;
    const requests: string[] = [];
    const cspViolations: string[] = [];
    const pageErrors: string[] = [];

    before(async function () {
      if (!fs.existsSync(CHROMIUM)) {
        if (process.env.CI)
          throw new Error(`${CHROMIUM} is missing: CI installs Debian's chromium package for this test`);
        console.log(`      (skipped: ${CHROMIUM} is not installed; apt-get install chromium to run the browser test)`);
        this.skip();
      }
      user = await registeredUser(server, 'docs');
      profile = fs.mkdtempSync(path.join(os.tmpdir(), 'rst-chromium-'));
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        args: CHROMIUM_ARGS,
        headless: true,
        viewport: { width: 1280, height: 900 },
      });
      context.on('request', (r) => requests.push(r.url()));
      // Not subject to the page's CSP (injected by the driver): reports every violation the page causes.
      await context.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', (e) =>
          console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`),
        );
      });
      page = context.pages()[0] ?? (await context.newPage());
      page.on('console', (m) => {
        if (/content security policy|CSP violation/i.test(m.text())) cspViolations.push(m.text());
      });
      page.on('pageerror', (e) => pageErrors.push(e.message));
      fs.mkdirSync(ARTIFACTS, { recursive: true });
    });

    after(async () => {
      await context?.close();
      if (profile) fs.rmSync(profile, { recursive: true, force: true });
    });

    /** Nothing left 127.0.0.1 and the page ran under its CSP without a violation or an error. */
    function expectClean(): void {
      const origin = new URL(server.url).origin;
      const outside = requests.filter(
        (u) => !u.startsWith('data:') && !u.startsWith('blob:') && new URL(u).origin !== origin,
      );
      expect(outside, 'requests that left the server').to.deep.equal([]);
      expect(new URL(server.url).hostname).to.equal('127.0.0.1');
      expect(cspViolations, 'CSP violations').to.deep.equal([]);
      expect(pageErrors, 'uncaught page errors').to.deep.equal([]);
    }

    // The auth bar's button (the dialog's own "Authorize" buttons are .modal-btn).
    const authBar = () => page.locator('.auth-wrapper button.authorize:not(.modal-btn)');

    async function authorize(scheme: 'bearerAuth' | 'apiKeyHeader', value: string): Promise<void> {
      await authBar().click();
      const box = page
        .locator('.modal-ux .auth-container')
        .filter({ has: page.locator('h4 code', { hasText: scheme }) });
      await box.locator('input').fill(value);
      await box.locator('button.authorize').click();
      await box.locator('button', { hasText: 'Logout' }).waitFor();
      await page.locator('.modal-ux button.close-modal').click();
    }

    async function logoutAll(): Promise<void> {
      await authBar().click();
      for (const button of await page.locator('.modal-ux .auth-container button', { hasText: 'Logout' }).all())
        await button.click();
      await page.locator('.modal-ux button.close-modal').click();
    }

    /** "Try it out" → "Execute" on GET /v1/me/account; returns the status shown and the request's headers. */
    async function executeGetAccount(): Promise<{ status: string; body: string; headers: Record<string, string> }> {
      const op = page.locator('#operations-Account-getAccount');
      if (!(await op.locator('button.execute').isVisible())) {
        if (!(await op.locator('.opblock-body').isVisible())) await op.locator('.opblock-summary').click();
        await op.locator('button.try-out__btn').click();
      }
      const clear = op.locator('button.btn-clear');
      if (await clear.isVisible()) await clear.click();
      const [request] = await Promise.all([
        page.waitForRequest((r) => r.url().endsWith('/v1/me/account')),
        op.locator('button.execute').click(),
      ]);
      const live = op.locator('.live-responses-table tbody tr.response');
      await live.waitFor();
      const status = (await live.locator('.response-col_status').innerText()).trim();
      const body = await live.locator('.response-col_description').innerText();
      return { status, body, headers: await request.allHeaders() };
    }

    it('renders the contract: title, the lifecycle description and the grouped tags', async () => {
      const res = await page.goto(`${server.url}/docs`);
      expect(res!.status()).to.equal(200);
      expect(await page.title()).to.equal('rst auth API');
      await page.locator('.swagger-ui .info .title').waitFor();
      expect(await page.locator('.swagger-ui .info .title').innerText()).to.include('rst auth');
      expect(await page.locator('.swagger-ui .info .description').innerText()).to.match(/Session first, key second\./);
      for (const tag of ['Auth', 'API keys', 'Account', 'Sessions', 'Product integration', 'Operations']) {
        expect(await page.locator(`.opblock-tag[data-tag="${tag}"]`).count(), tag).to.equal(1);
      }
      expect(await page.locator('#operations-Account-getAccount').count()).to.equal(1);
      for (const op of ['refreshSession', 'logout', 'listSessions', 'revokeSession'])
        expect(await page.locator(`#operations-Sessions-${op}`).count(), op).to.equal(1);
      for (const op of ['introspect', 'getJwks'])
        expect(await page.locator(`#operations-Product_integration-${op}`).count(), op).to.equal(1);
      expect(await authBar().isVisible()).to.equal(true);
      await page.screenshot({ path: path.join(ARTIFACTS, `docs-page-${DB_LABEL}.png`) });
      expectClean();
    });

    it('sends GET /v1/me/account with a JWT from the auth bar and shows 200 with the username', async () => {
      await authorize('bearerAuth', user.token);
      const { status, body, headers } = await executeGetAccount();
      expect(status).to.equal('200');
      expect(body).to.include(`"username": "${user.username}"`);
      expect(headers.authorization).to.equal(`Bearer ${user.token}`);
      await page
        .locator('#operations-Account-getAccount')
        .screenshot({ path: path.join(ARTIFACTS, `docs-jwt-${DB_LABEL}.png`) });
      expectClean();
    });

    it('forgets the authorization on a reload unless "Remember" is ticked', async () => {
      expect(await page.locator('#rst-remember').isChecked()).to.equal(false);
      await page.reload();
      await page.locator('#operations-Account-getAccount').waitFor();
      expect(await authBar().getAttribute('class')).to.not.match(/\blocked\b/);
      expect(await page.evaluate(() => localStorage.getItem('authorized'))).to.equal(null);
      expectClean();
    });

    it('keeps the authorization across a reload once "Remember" is ticked (persistAuthorization)', async () => {
      await authorize('bearerAuth', user.token);
      await page.locator('#rst-remember').check();
      await page.reload();
      await page.locator('#operations-Account-getAccount').waitFor();
      expect(await authBar().getAttribute('class')).to.match(/\blocked\b/);
      const { status, body } = await executeGetAccount();
      expect(status).to.equal('200');
      expect(body).to.include(user.username);
      expectClean();
    });

    it('sends it with an API key in the X-API-Key field and shows 200', async () => {
      const created = await createApiKey({ client: server.as(user.token), body: { name: 'docs browser test' } });
      expect(created.response?.status, 'createApiKey must work for this test').to.equal(201);
      await logoutAll();
      await authorize('apiKeyHeader', created.data!.raw_key);
      const { status, body, headers } = await executeGetAccount();
      expect(status).to.equal('200');
      expect(body).to.include(`"username": "${user.username}"`);
      expect(headers['x-api-key']).to.equal(created.data!.raw_key);
      expect(headers.authorization).to.equal(undefined);
      expectClean();
    });

    it('fills the auth bar with the token of a successful Try-it-out of POST /v1/auth/login', async () => {
      await logoutAll();
      expect(await authBar().getAttribute('class')).to.not.match(/\blocked\b/);
      const op = page.locator('#operations-Auth-login');
      await op.locator('.opblock-summary').click();
      await op.locator('button.try-out__btn').click();
      await op
        .locator('textarea.body-param__text')
        .fill(JSON.stringify({ username: user.username, password: user.password }));
      await op.locator('button.execute').click();
      const live = op.locator('.live-responses-table tbody tr.response');
      await live.waitFor();
      expect((await live.locator('.response-col_status').innerText()).trim()).to.equal('200');
      expect(await authBar().getAttribute('class')).to.match(/\blocked\b/);
      // The new session, not the one the test signed in with, is what the page now sends.
      const { status, body, headers } = await executeGetAccount();
      expect(status).to.equal('200');
      expect(body).to.include(`"username": "${user.username}"`);
      expect(headers.authorization).to.match(/^Bearer eyJ/);
      expect(headers.authorization).to.not.equal(`Bearer ${user.token}`);
      await op.screenshot({ path: path.join(ARTIFACTS, `docs-login-${DB_LABEL}.png`) });
      expectClean();
    });

    it('leaves the auth bar as it was after a refused sign-in', async () => {
      await logoutAll();
      const op = page.locator('#operations-Auth-login');
      await op
        .locator('textarea.body-param__text')
        .fill(JSON.stringify({ username: user.username, password: 'not the password' }));
      await op.locator('button.execute').click();
      await op.locator('.live-responses-table tbody tr.response .response-col_status', { hasText: '401' }).waitFor();
      expect(await authBar().getAttribute('class')).to.not.match(/\blocked\b/);
      expectClean();
    });

    it('shows 401 unauthorized for a wrong token', async () => {
      await logoutAll();
      // A real JWT with its signature changed: well-formed, wrongly signed.
      const forged = `${user.token.slice(0, -4)}${user.token.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
      await authorize('bearerAuth', forged);
      const { status, body, headers } = await executeGetAccount();
      expect(headers.authorization).to.equal(`Bearer ${forged}`);
      expect(status).to.equal('401');
      expect(body).to.include('"code": "unauthorized"');
      expect(body).to.not.include(user.username);
      await page
        .locator('#operations-Account-getAccount')
        .screenshot({ path: path.join(ARTIFACTS, `docs-401-${DB_LABEL}.png`) });
      expectClean();
    });
  });
});
