// GET /docs: the interactive reference. Swagger UI from the installed swagger-ui-dist package,
// served by the service itself (no CDN: it works offline and nothing third-party runs in a page
// that holds a user's JWT or API key), rendering the served /openapi.json.
//
// The page carries no inline script: Swagger UI is initialised from /docs/assets/rst-docs.js, so
// the Content-Security-Policy can say `script-src 'self'`. Swagger UI sets element styles at
// run time and draws icons from data: URIs, hence `style-src 'unsafe-inline'` and `img-src data:`.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Middleware } from './state.ts';
import { escapeHtml } from '../lib/html.ts';
import { problem } from '../lib/problems.ts';

export const DOCS_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': DOCS_CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  // frame-ancestors covers current browsers; X-Frame-Options covers the ones that predate it.
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

// Relative URLs throughout (the page is /docs, so "docs/assets/x" is /docs/assets/x and
// "openapi.json" is /openapi.json): the page keeps working behind a proxy that mounts the service
// under a path prefix.
const page = (appName: string) => `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${escapeHtml(appName)} API</title>
  <link rel="icon" type="image/png" sizes="32x32" href="docs/assets/favicon-32x32.png">
  <link rel="icon" type="image/png" sizes="16x16" href="docs/assets/favicon-16x16.png">
  <link rel="stylesheet" href="docs/assets/swagger-ui.css">
  <link rel="stylesheet" href="docs/assets/rst-docs.css">
</head>
<body>
  <header class="rst-bar">
    <span class="rst-brand">${escapeHtml(appName)} API</span>
    <span class="rst-hint">Sign in with <strong>Try it out</strong> on <code>POST /v1/auth/login</code> (or <code>/v1/auth/google</code>): the token it returns fills the auth bar. Or press <strong>Authorize</strong> and paste a JWT or an <code>rst_</code> API key. Requests go to this server.</span>
    <label class="rst-remember"><input type="checkbox" id="rst-remember"> Remember authorization in this browser</label>
    <nav><a href="openapi.json">openapi.json</a> <a href="openapi.yaml">openapi.yaml</a></nav>
    <p class="rst-install">SDK: <code>npm install @rst-auth/sdk</code> · CLI: <code>npm install -g @rst-auth/cli</code> <span>(until they are published, from the tarballs <code>npm run pack</code> writes in a clone)</span></p>
  </header>
  <main id="swagger-ui"></main>
  <noscript><p class="rst-noscript">This reference needs JavaScript. The contract itself is at <a href="openapi.yaml">openapi.yaml</a>.</p></noscript>
  <script src="docs/assets/swagger-ui-bundle.js"></script>
  <script src="docs/assets/rst-docs.js"></script>
</body>
</html>
`;

const INIT_JS = `// Initialises Swagger UI for rst auth (a served file, not an inline script, so the page's
// Content-Security-Policy can forbid inline scripts).
'use strict';
// Swagger UI keeps a persisted authorization under this localStorage key (its own name).
const STORED = 'authorized';
// Opt-in: a token in localStorage outlives the tab and is readable by any script of this origin,
// so the auth bar is kept across reloads only when the person ticks "Remember".
const REMEMBER = 'rst-docs-remember-authorization';
const remember = localStorage.getItem(REMEMBER) === 'yes';
if (!remember) localStorage.removeItem(STORED);
// Operations whose 200 answer carries a session: a successful Try-it-out signs the page in.
const SIGN_IN = /\\/v1\\/auth\\/(login|google|refresh)$/;
window.ui = SwaggerUIBundle({
  url: 'openapi.json',
  dom_id: '#swagger-ui',
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
  deepLinking: true,
  persistAuthorization: remember,
  displayRequestDuration: true,
  docExpansion: 'list',
  defaultModelsExpandDepth: 0,
  showExtensions: false,
  // No call to validator.swagger.io: nothing leaves this server.
  validatorUrl: null,
  responseInterceptor: (res) => {
    const token = res && res.ok && res.body && res.body.access_token;
    if (typeof token === 'string' && SIGN_IN.test(new URL(res.url, location.href).pathname)) {
      window.ui.authActions.authorize({
        bearerAuth: { name: 'bearerAuth', schema: { type: 'http', scheme: 'bearer' }, value: token },
      });
    }
    return res;
  },
});
const box = document.getElementById('rst-remember');
box.checked = remember;
box.addEventListener('change', () => {
  if (box.checked) {
    localStorage.setItem(REMEMBER, 'yes');
    // Keep what the auth bar holds now; from the next load on Swagger UI keeps it up to date.
    localStorage.setItem(STORED, JSON.stringify(window.ui.authSelectors.authorized().toJS()));
  } else {
    localStorage.removeItem(REMEMBER);
    localStorage.removeItem(STORED);
  }
});
`;

const STYLE = `.rst-bar { display: flex; flex-wrap: wrap; align-items: baseline; gap: .5rem 1.25rem; padding: .75rem 1.5rem;
  background: #1b1f24; color: #e6edf3; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
.rst-brand { font-weight: 700; font-size: 1.1rem; letter-spacing: .01em; }
.rst-hint { flex: 1 1 28rem; color: #b7c0c9; }
.rst-hint code { color: #e6edf3; background: #2d333b; padding: 0 .25rem; border-radius: 3px; }
.rst-bar nav a { color: #8cc4ff; margin-left: .75rem; text-decoration: none; }
.rst-bar nav a:hover { text-decoration: underline; }
.rst-remember { color: #b7c0c9; white-space: nowrap; }
.rst-install { flex-basis: 100%; margin: 0; color: #b7c0c9; }
.rst-install code { color: #e6edf3; background: #2d333b; padding: 0 .25rem; border-radius: 3px; }
.rst-install span { color: #8b949e; }
.rst-noscript { padding: 1.5rem; font: 16px system-ui, sans-serif; }
.swagger-ui .info { margin: 30px 0 20px; }
.swagger-ui .scheme-container { position: sticky; top: 0; z-index: 2; box-shadow: 0 1px 2px rgba(0,0,0,.15); padding: 14px 0; }
`;

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

function asset(body: string | Buffer, type: string): Asset {
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return { body: buf, type, etag: `"${createHash('sha256').update(buf).digest('base64url').slice(0, 27)}"` };
}

/** The files the page needs, read once at boot: a missing swagger-ui-dist stops start-up rather
 * than serving a broken page. Only these names are served (no path from the URL touches the disk). */
function loadAssets(): Map<string, Asset> {
  const dist = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const read = (name: string) => fs.readFileSync(path.join(dist, name));
  return new Map([
    ['swagger-ui-bundle.js', asset(read('swagger-ui-bundle.js'), 'text/javascript; charset=utf-8')],
    ['swagger-ui.css', asset(read('swagger-ui.css'), 'text/css; charset=utf-8')],
    ['favicon-32x32.png', asset(read('favicon-32x32.png'), 'image/png')],
    ['favicon-16x16.png', asset(read('favicon-16x16.png'), 'image/png')],
    ['rst-docs.js', asset(INIT_JS, 'text/javascript; charset=utf-8')],
    ['rst-docs.css', asset(STYLE, 'text/css; charset=utf-8')],
  ]);
}

/** Koa middleware serving /docs and /docs/assets/*; every other path passes through. */
export function docs(appName: string): Middleware {
  const assets = loadAssets();
  const html = asset(page(appName), 'text/html; charset=utf-8');

  return async (ctx, next) => {
    if (ctx.path !== '/docs' && ctx.path !== '/docs/' && !ctx.path.startsWith('/docs/assets/')) return next();
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) ctx.set(name, value);
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      throw problem('method_not_allowed', { headers: { Allow: 'GET, HEAD' } });
    }
    if (ctx.path === '/docs/') {
      // The page's relative URLs resolve against /docs, not /docs/.
      ctx.status = 301;
      ctx.redirect('../docs');
      return;
    }
    const found = ctx.path === '/docs' ? html : assets.get(ctx.path.slice('/docs/assets/'.length));
    if (!found) throw problem('not_found');
    // Revalidated on every load (ETag → 304), so an upgraded swagger-ui-dist is never stale.
    ctx.set('Cache-Control', 'no-cache');
    ctx.set('ETag', found.etag);
    ctx.type = found.type;
    if (ctx.get('if-none-match') === found.etag) {
      ctx.status = 304;
      return;
    }
    ctx.body = found.body;
  };
}
