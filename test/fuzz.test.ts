// Fuzzing from the contract: fast-check generates requests from openapi.yaml's request schemas
// (valid, then mutated: fields dropped, added, retyped, oversized) and plain junk (bad JSON, wrong
// content types, huge and unicode strings, deep nesting, nulls, bad and duplicate headers, junk
// credentials, random paths and methods) against every operation, at least 5,000 requests a run.
// Every answer must match the contract (test/support/contract.ts checkResponse: documented status, a
// Problem body for every error, X-Request-Id, Retry-After on 429/503 …) and none may be a 5xx
// other than a 503 the operation documents.
//
// Seeded: FUZZ_SEED=<n> replays a run; the seed is printed when a run fails. FUZZ_REQUESTS raises
// the count.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import YAML from 'yaml';
import { createApiKey } from '../generated/sdk.gen.ts';
import { checkResponse } from './support/contract.ts';
import { DB_LABEL } from './support/database.ts';
import { type GoogleFake, startGoogleFake } from './support/google.ts';
import { ROOT, startServer, type TestServer } from './support/server.ts';
import { createServiceKey, migratedDatabase } from './support/serviceKeys.ts';
import { registeredUser } from './support/users.ts';

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
const REQUESTS = Math.max(5000, Number(process.env.FUZZ_REQUESTS ?? 0));
const BATCH = 25;
const CONCURRENCY = 8;

type Schema = Record<string, any>;
const spec = YAML.parse(fs.readFileSync(path.join(ROOT, 'openapi.yaml'), 'utf8'));
const resolve = (schema: Schema): Schema => {
  let s = schema;
  while (s?.$ref)
    s = s.$ref
      .split('/')
      .slice(1)
      .reduce((node: any, key: string) => node[key], spec);
  return s;
};

interface Operation {
  operationId: string;
  method: string;
  /** with `{key_id}` still in it */
  template: string;
  body?: Schema;
  secured: boolean;
  responses: Record<string, unknown>;
}

const operations: Operation[] = Object.entries<Record<string, any>>(spec.paths).flatMap(([template, item]) =>
  Object.entries<any>(item)
    .filter(([method]) => ['get', 'post', 'put', 'patch', 'delete'].includes(method))
    .map(([method, op]) => ({
      operationId: op.operationId as string,
      method: method.toUpperCase(),
      template,
      body: op.requestBody ? resolve(op.requestBody.content['application/json'].schema) : undefined,
      secured: (op.security ?? spec.security ?? []).length > 0,
      responses: op.responses as Record<string, unknown>,
    })),
);

const byId = new Map(operations.map((o) => [o.operationId, o]));

// ---------------------------------------------------------------- values from a schema

function fromSchema(schema: Schema): fc.Arbitrary<unknown> {
  const s = resolve(schema);
  if (s.enum) return fc.constantFrom(...(s.enum as unknown[]));
  switch (s.type) {
    case 'object': {
      const props = Object.fromEntries(Object.entries<Schema>(s.properties ?? {}).map(([k, v]) => [k, fromSchema(v)]));
      return fc.record(props, { requiredKeys: (s.required ?? []) as string[] });
    }
    case 'string': {
      const min = s.minLength ?? 0;
      const max = s.maxLength ?? 64;
      const fits = (v: string) => v.length >= min && v.length <= max;
      if (s.format === 'email') return fc.emailAddress().filter(fits);
      if (s.format === 'uuid') return fc.uuid();
      if (s.pattern) return fc.stringMatching(new RegExp(s.pattern)).filter(fits);
      return fc.oneof(
        fc.string({ minLength: min, maxLength: Math.min(max, 40) }),
        fc.string({ minLength: min, maxLength: Math.min(max, 40), unit: 'grapheme' }),
        // Schema-valid and nasty: NUL, lone surrogates, bidi controls, emoji, injection strings.
        nastyString.filter(fits),
        fc.constant('correct horse battery staple'),
      );
    }
    case 'integer':
      return fc.integer({ min: s.minimum ?? -1000, max: s.maximum ?? 1000 });
    case 'boolean':
      return fc.boolean();
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

// ---------------------------------------------------------------- junk

const hugeString = fc.integer({ min: 300, max: 20_000 }).map((n) => 'x'.repeat(n));
const nastyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.string({ unit: 'grapheme', maxLength: 60 }),
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    'a\u0000b',
    '\ud800',
    '\u202e\u0644\u0627',
    '😀'.repeat(100),
    '%00',
    "' or 1=1 --",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a log4shell-style payload, sent as text
    '${jndi:x}',
    '<script>',
    '../../etc/passwd',
    '\r\n\r\n',
    'null',
    'NaN',
  ),
);
const junkValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  nastyString,
  hugeString,
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 5 }),
  fc.jsonValue({ maxDepth: 4 }),
  fc.integer({ min: 20, max: 400 }).map((depth) => JSON.parse('['.repeat(depth) + ']'.repeat(depth))),
);

/** A valid body with one thing broken. */
function mutate(schema: Schema, body: Record<string, unknown>): fc.Arbitrary<unknown> {
  const keys = Object.keys(resolve(schema).properties ?? {});
  return fc.oneof(
    fc.constantFrom(...(keys.length ? keys : ['x'])).map((k) => {
      const { [k]: _, ...rest } = body;
      return rest;
    }),
    fc.tuple(fc.string({ minLength: 1, maxLength: 20 }), junkValue).map(([k, v]) => ({ ...body, [k]: v })),
    fc.tuple(fc.constantFrom(...(keys.length ? keys : ['x'])), junkValue).map(([k, v]) => ({ ...body, [k]: v })),
    fc.constant([body]),
    junkValue,
  );
}

const rawJunkBody = fc.oneof(
  fc.constantFrom(
    '{',
    '{"username":',
    '[1,2',
    '{"a":1}}',
    "{'single':'quotes'}",
    'null',
    'true',
    '"string"',
    '',
    ' ',
    '\ufeff{}',
    '{"__proto__":{"admin":true}}',
    '{"constructor":{"prototype":{"x":1}}}',
  ),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.constant('{"email":"a@b.c","email":"d@e.f","password":"x","username":"dup"}'),
  hugeString.map((s) => `{"username":"${s}","password":"${s}"}`),
  fc.integer({ min: 17_000, max: 40_000 }).map((n) => `{"pad":"${'p'.repeat(n)}"}`),
);

const contentTypes = fc.constantFrom(
  'application/json',
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'application/problem+json',
  'application/merge-patch+json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  'json',
  '',
);

/** Percent-encodes a path segment; a lone surrogate is replaced first (it has no UTF-8 form). */
const encodeSegment = (s: string) => encodeURIComponent(s.toWellFormed());

const headerValue = fc.oneof(
  fc.string({ maxLength: 80 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
  fc.string({ minLength: 129, maxLength: 400 }).map((s) => s.replace(/[^\x20-\x7e]/g, 'a')),
);

// ---------------------------------------------------------------- requests

interface FuzzRequest {
  method: string;
  path: string;
  headers: [string, string][];
  body?: string;
  /** the operation it was generated for (strays have none) */
  operationId?: string;
}

interface Credentials {
  jwt: string;
  /** a key used as a credential; its id is never generated, so it stays valid all run */
  apiKey: string;
  /** another key of the account, which a generated revocation may hit (204) */
  apiKeyId: string;
  /** a product backend's key, for introspection (and refused everywhere else) */
  serviceKey: string;
}

function credentialHeaders(creds: Credentials): fc.Arbitrary<[string, string][]> {
  const jwtShaped = fc
    .tuple(fc.base64String(), fc.base64String(), fc.base64String())
    .map(([a, b, c]) => `eyJ${a}.eyJ${b}.${c}`.replace(/=/g, ''));
  const keyShaped = fc.stringMatching(/^rst_[0-9A-Za-z]{42}$/);
  const token = fc.oneof(
    { weight: 4, arbitrary: fc.constant(creds.jwt) },
    { weight: 3, arbitrary: fc.constant(creds.apiKey) },
    { weight: 2, arbitrary: fc.constant(creds.serviceKey) },
    { weight: 1, arbitrary: fc.constant(`${creds.jwt}x`) },
    { weight: 1, arbitrary: fc.constant(`${creds.jwt.split('.').slice(0, 2).join('.')}.`) },
    { weight: 2, arbitrary: jwtShaped },
    { weight: 2, arbitrary: keyShaped },
    { weight: 2, arbitrary: headerValue },
  );
  return fc.oneof(
    fc.constant<[string, string][]>([]),
    token.map((t): [string, string][] => [['Authorization', `Bearer ${t}`]]),
    token.map((t): [string, string][] => [['X-API-Key', t]]),
    fc.tuple(token, token).map(([t, u]): [string, string][] => [
      ['Authorization', `Bearer ${t}`],
      ['Authorization', `Bearer ${u}`],
    ]),
    fc.tuple(token, token).map(([t, u]): [string, string][] => [
      ['Authorization', `Bearer ${t}`],
      ['X-API-Key', u],
    ]),
    fc
      .tuple(fc.constantFrom('Basic', 'Bearer', 'bearer', 'Token', 'Digest', 'BEARER'), headerValue)
      .map(([scheme, v]): [string, string][] => [['Authorization', `${scheme} ${v}`]]),
    fc.constantFrom<[string, string][]>(
      [['Authorization', 'Bearer']],
      [['Authorization', '']],
      [['Authorization', 'Bearer  ']],
      [['X-API-Key', '']],
    ),
  );
}

const extraHeaders = fc.array(
  fc.oneof(
    headerValue.map((v): [string, string] => ['X-Request-Id', v]),
    fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/).map((v): [string, string] => ['X-Request-Id', v]),
    headerValue.map((v): [string, string] => ['Accept', v]),
    headerValue.map((v): [string, string] => ['X-Forwarded-For', v]),
    headerValue.map((v): [string, string] => ['Origin', v]),
    headerValue.map((v): [string, string] => ['Accept-Encoding', v]),
  ),
  { maxLength: 3 },
);

function pathFor(op: Operation, creds: Credentials): fc.Arbitrary<string> {
  if (!op.template.includes('{key_id}')) return fc.constant(op.template);
  // Other spellings PostgreSQL would read or half-read as a uuid: each must be a 400, never a 500.
  const spelled = fc
    .tuple(fc.oneof(fc.uuid(), fc.constant(creds.apiKeyId)), fc.integer({ min: 0, max: 7 }))
    .map(
      ([u, how]) =>
        [
          `urn:uuid:${u}`,
          `URN:UUID:${u.toUpperCase()}`,
          `{${u}}`,
          encodeSegment(`{${u}}`),
          u.replaceAll('-', ''),
          u.toUpperCase(),
          `${u}%20`,
          `${u.slice(0, 8)}-${u.slice(9, 13)}${u.slice(14)}`,
        ][how]!,
    );
  const id = fc.oneof(
    fc.uuid(),
    fc.constant(creds.apiKeyId),
    spelled,
    nastyString.map(encodeSegment),
    fc.constantFrom('', '..', '%2e%2e', 'null', '0'),
  );
  return id.map((v) => op.template.replace('{key_id}', v));
}

function operationRequest(op: Operation, creds: Credentials): fc.Arbitrary<FuzzRequest> {
  const auth = op.secured
    ? credentialHeaders(creds)
    : fc.oneof(
        { weight: 4, arbitrary: fc.constant([] as [string, string][]) },
        { weight: 1, arbitrary: credentialHeaders(creds) },
      );
  let body: fc.Arbitrary<{ body?: string; type?: string }>;
  if (!op.body) {
    body = fc.oneof(
      { weight: 6, arbitrary: fc.constant({}) },
      { weight: 1, arbitrary: fc.tuple(rawJunkBody, contentTypes).map(([b, type]) => ({ body: b, type })) },
    );
  } else {
    const valid = fromSchema(op.body) as fc.Arbitrary<Record<string, unknown>>;
    body = fc.oneof(
      { weight: 5, arbitrary: valid.map((v) => ({ body: JSON.stringify(v), type: 'application/json' })) },
      {
        weight: 5,
        arbitrary: valid
          .chain((v) => mutate(op.body!, v))
          .map((v) => ({ body: JSON.stringify(v) ?? 'undefined', type: 'application/json' })),
      },
      { weight: 2, arbitrary: fc.tuple(rawJunkBody, contentTypes).map(([b, type]) => ({ body: b, type })) },
      { weight: 1, arbitrary: fc.tuple(valid, contentTypes).map(([v, type]) => ({ body: JSON.stringify(v), type })) },
      { weight: 1, arbitrary: fc.constant({}) },
    );
  }
  return fc
    .record({ path: pathFor(op, creds), auth, body, extra: extraHeaders })
    .map(({ path: p, auth: a, body: b, extra }) => {
      const headers: [string, string][] = [...a, ...extra];
      if (b.type) headers.push(['Content-Type', b.type]);
      return { method: op.method, path: p, headers, body: b.body, operationId: op.operationId };
    });
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'];

function strayRequest(creds: Credentials): fc.Arbitrary<FuzzRequest> {
  const known = operations.map((o) => o.template.replace('{key_id}', creds.apiKeyId));
  const pathArb = fc.oneof(
    fc.constantFrom(...known),
    fc.constantFrom(...known).map((p) => `${p}/`),
    fc.constantFrom(...known).map((p) => p.toUpperCase()),
    fc.constantFrom(...known).map((p) => p.replace('/v1/', '//v1//')),
    fc.constantFrom(...known).chain((p) => fc.webQueryParameters().map((q) => `${p}?${q}`)),
    fc.webPath().map((p) => p || '/'),
    fc
      .array(nastyString.map(encodeSegment), { minLength: 1, maxLength: 4 })
      .map((segments) => `/${segments.join('/')}`),
    fc.constantFrom(
      '/',
      '/v1',
      '/v1/auth',
      '/v1/me',
      '/metrics',
      '/docs/../openapi.yaml',
      '/openapi.yml',
      '/healthz/',
      '/%',
      '/%zz',
      '/v1/auth/api-keys/%00',
    ),
    fc.integer({ min: 2000, max: 8000 }).map((n) => `/${'a'.repeat(n)}`),
  );
  return fc
    .record({
      method: fc.constantFrom(...METHODS),
      path: pathArb,
      auth: credentialHeaders(creds),
      extra: extraHeaders,
      body: fc.option(fc.tuple(rawJunkBody, contentTypes)),
    })
    .map(({ method, path: p, auth, extra, body }) => {
      const headers: [string, string][] = [...auth, ...extra];
      const withBody = body && method !== 'GET' && method !== 'HEAD';
      if (withBody) headers.push(['Content-Type', body[1]]);
      return { method, path: p, headers, body: withBody ? body[0] : undefined };
    });
}

function requestArb(creds: Credentials): fc.Arbitrary<FuzzRequest> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...operations).chain((op) => operationRequest(op, creds)) },
    { weight: 1, arbitrary: strayRequest(creds) },
  );
}

const describeRequest = (r: FuzzRequest) =>
  `${r.method} ${r.path.slice(0, 200)}\n  headers: ${JSON.stringify(r.headers).slice(0, 600)}\n  body: ${r.body === undefined ? '(none)' : JSON.stringify(r.body.slice(0, 400))}${(r.body?.length ?? 0) > 400 ? ` … (${r.body!.length} chars)` : ''}`;

// ---------------------------------------------------------------- the run

describe(`fuzzing from the contract (${DB_LABEL})`, () => {
  let server: TestServer;
  let google: GoogleFake;
  let creds: Credentials;
  const statuses = new Map<number, number>();
  const perOperation = new Map<string, number>();
  let sent = 0;

  before(async () => {
    google = await startGoogleFake();
    // A service key, so generated introspections reach the handler with every kind of token.
    const database = await migratedDatabase();
    const serviceKey = await createServiceKey(database, 'fuzz');
    server = await startServer({
      database,
      env: {
        RATE_LIMIT_LOGIN_IDENTIFIER: '100000/900',
        GOOGLE_CLIENT_ID: google.audience,
        GOOGLE_CERTS_URL: google.certsUrl,
      },
    });
    const user = await registeredUser(server, 'fuzz');
    const key = await createApiKey({ client: server.as(user.token), body: { name: 'fuzz' }, throwOnError: true });
    const target = await createApiKey({
      client: server.as(user.token),
      body: { name: 'fuzz target' },
      throwOnError: true,
    });
    creds = { jwt: user.token, apiKey: key.data.raw_key, apiKeyId: target.data.id, serviceKey };
  });
  after(async () => {
    await server?.stop();
    await google?.stop();
  });

  async function send(r: FuzzRequest): Promise<void> {
    const url = `${server.url}${r.path}`;
    const headers = new Headers();
    for (const [name, value] of r.headers) headers.append(name, value);
    const init: RequestInit = { method: r.method, headers, body: r.body, signal: AbortSignal.timeout(20_000) };
    let res: Response;
    try {
      res = await fetch(url, init);
    } catch (err) {
      // The client refused to build the request (an invalid URL or header): nothing was sent.
      if (err instanceof TypeError && !(err as { cause?: unknown }).cause) return;
      throw new Error(`request failed: ${(err as Error).message} ${(err as { cause?: Error }).cause?.message ?? ''}`);
    }
    sent++;
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    const operation = r.operationId ? byId.get(r.operationId) : undefined;
    if (operation) perOperation.set(operation.operationId, (perOperation.get(operation.operationId) ?? 0) + 1);

    const problemCode = async () =>
      (
        (await res
          .clone()
          .json()
          .catch(() => ({}))) as { code?: string }
      ).code;
    if (res.status >= 500) {
      const documented = operation && res.status === 503 && operation.responses['503'] !== undefined;
      if (!documented) throw new Error(`${res.status} ${await problemCode()}`);
    }
    if (r.method === 'HEAD') {
      if (!res.headers.get('x-request-id')) throw new Error('HEAD without X-Request-Id');
      return;
    }
    // fetch resolves the path (dot segments, percent-encoding) as it was sent.
    await checkResponse(r.method, res.url || url, res);
    const sentId = r.headers.find(([n]) => n === 'X-Request-Id')?.[1];
    if (
      sentId &&
      r.headers.filter(([n]) => n === 'X-Request-Id').length === 1 &&
      /^[A-Za-z0-9._:-]{1,128}$/.test(sentId) &&
      res.headers.get('x-request-id') !== sentId
    ) {
      throw new Error(`X-Request-Id ${sentId} not echoed`);
    }
    await res.arrayBuffer();
  }

  it(`answers ${REQUESTS}+ generated requests within the contract, with no 5xx (seed ${SEED})`, async function () {
    this.timeout(300_000);
    // A few generated requests are refused by fetch itself (an invalid URL): generate some spare.
    const batches = Math.ceil((REQUESTS * 1.06) / BATCH);
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(requestArb(creds), { minLength: BATCH, maxLength: BATCH }), async (requests) => {
          const queue = [...requests];
          await Promise.all(
            Array.from({ length: CONCURRENCY }, async () => {
              for (let r = queue.shift(); r; r = queue.shift()) {
                try {
                  await send(r);
                } catch (err) {
                  throw new Error(`${(err as Error).message}\n  for ${describeRequest(r)}`);
                }
              }
            }),
          );
        }),
        { seed: SEED, numRuns: batches, endOnFailure: true },
      );
    } catch (err) {
      console.error(`\n  fuzz failed; replay with FUZZ_SEED=${SEED}\n`);
      throw err;
    }

    expect(sent, 'requests that reached the server').to.be.at.least(REQUESTS);
    // The generator reaches every operation and the main outcomes, not one error path.
    for (const op of operations) expect(perOperation.get(op.operationId) ?? 0, op.operationId).to.be.at.least(50);
    for (const status of [200, 201, 202, 400, 401, 403, 404, 405, 409, 413, 415])
      expect(statuses.get(status) ?? 0, `responses with status ${status}`).to.be.at.least(1);
    expect(server.child.exitCode, 'the server is still running').to.equal(null);
  });

  // Below what fetch can send: bytes on a socket. Node's HTTP parser answers these itself (400 or
  // 431, before the application sees a request); what matters is that each is refused, that no
  // smuggled second request is ever served, and that the server goes on serving.
  it('refuses malformed HTTP on the wire and keeps serving', async () => {
    const raw = (bytes: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(Number(new URL(server.url).port), '127.0.0.1');
        let answer = '';
        socket.setTimeout(5000, () => socket.destroy(new Error('no answer within 5 s')));
        socket.on('data', (chunk) => (answer += chunk.toString('latin1')));
        socket.on('end', () => resolve(answer));
        socket.on('close', () => resolve(answer));
        socket.on('error', reject);
        socket.end(bytes);
      });
    const host = `Host: ${new URL(server.url).host}\r\n`;
    const cases: [string, string][] = [
      ['a request line that is not HTTP', 'HELLO\r\n\r\n'],
      ['a header without a colon', `GET /healthz HTTP/1.1\r\n${host}Broken header\r\n\r\n`],
      [
        'a negative Content-Length',
        `POST /v1/auth/login HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: -1\r\n\r\n{}`,
      ],
      [
        'two different Content-Lengths',
        `POST /v1/auth/login HTTP/1.1\r\n${host}Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}`,
      ],
      [
        'Content-Length with Transfer-Encoding (request smuggling)',
        `POST /v1/auth/login HTTP/1.1\r\n${host}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v1/me/account HTTP/1.1\r\n${host}\r\n\r\n`,
      ],
      [
        'broken chunked encoding',
        `POST /v1/auth/login HTTP/1.1\r\n${host}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      ],
      ['headers over 16 KB', `GET /healthz HTTP/1.1\r\n${host}X-Big: ${'b'.repeat(20_000)}\r\n\r\n`],
      ['a NUL in the path', `GET /heal\u0000thz HTTP/1.1\r\n${host}\r\n`],
    ];
    for (const [what, bytes] of cases) {
      const answer = await raw(bytes);
      const statuses = [...answer.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));
      expect(statuses.length, `${what}: answered once`).to.equal(1);
      expect(statuses[0], what).to.be.within(400, 499);
      expect(answer, `${what}: no smuggled request served`).not.to.match(/"username"|"unauthorized"/);
    }
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).to.equal(200);
    expect(server.child.exitCode).to.equal(null);
  });
});
