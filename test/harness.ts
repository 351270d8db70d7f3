// The test harness: starts a real rst auth server as a child process (the same `server.ts` that
// `npm start` runs) on a free port and a fresh database, and gives tests the generated SDK with a
// fetch that validates every response against openapi.yaml. A response the contract does not
// allow, or any 5xx other than a documented 503, fails the test that received it.
//
// Database: a fresh PGlite folder by default; when DATABASE_URL is set (PostgreSQL), a fresh
// database is created on that server for each started server (or shared, for multi-instance
// tests) and dropped afterwards.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OpenAPIBackend, type Document } from 'openapi-backend';
import addFormats from 'ajv-formats';
import pg from 'pg';
import YAML from 'yaml';
import { createClient, type Client } from '../generated/client/index.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ON_POSTGRES = !!process.env.DATABASE_URL;
export const DB_LABEL = ON_POSTGRES ? 'PostgreSQL' : 'PGlite';

/** Cheap hashing for tests, set explicitly (the service's defaults are OWASP strength). */
export const TEST_ENV: Record<string, string> = {
  NODE_ENV: 'test',
  LOG_LEVEL: 'info',
  SCRYPT_LOG_N: '10',
  SCRYPT_R: '8',
  SCRYPT_P: '1',
  JWT_SECRET: 'test-secret-test-secret-test-secret-0123456789',
  // Generous limits so suites that register many accounts from 127.0.0.1 are not throttled;
  // the limit tests set the defaults back explicitly.
  RATE_LIMIT_REGISTER_IP: '100000/3600',
  RATE_LIMIT_LOGIN_IP: '100000/900',
  RATE_LIMIT_EMAIL_MINUTE: '100000/60',
  RATE_LIMIT_EMAIL_HOUR: '100000/3600',
  RATE_LIMIT_EMAIL_IP: '100000/3600',
  RATE_LIMIT_VERIFY_IP: '100000/900',
  RATE_LIMIT_RESET_IP: '100000/900',
  RATE_LIMIT_GOOGLE_IP: '100000/900',
  RATE_LIMIT_AUTH_FAILURE_IP: '100000/900',
};

// ---------------------------------------------------------------- contract validation

const spec = YAML.parse(fs.readFileSync(path.join(ROOT, 'openapi.yaml'), 'utf8')) as Document;
const contract = new OpenAPIBackend({
  definition: spec,
  strict: true,
  quick: false,
  customizeAjv: (ajv) => {
    addFormats.default(ajv, ['email', 'uuid', 'date-time']);
    return ajv;
  },
});
const ready = contract.init();

export class ContractViolation extends Error {}

/** Checks one response against the operation it answers (or the Problem schema for 404/405). */
export async function checkResponse(method: string, url: string, res: Response): Promise<void> {
  await ready;
  const { pathname } = new URL(url);
  const where = `${method} ${pathname} → ${res.status}`;
  const fail = (why: string) => {
    throw new ContractViolation(`${where}: ${why}`);
  };
  if (!res.headers.get('x-request-id')) fail('no X-Request-Id header');
  if (res.status >= 500 && res.status !== 503 && res.status !== 501) fail('server error');
  const text = await res.clone().text();
  if (res.status === 204) {
    if (text !== '') fail('204 with a body');
    return;
  }
  const type = res.headers.get('content-type') ?? '';
  if (pathname === '/openapi.yaml' || pathname === '/openapi.json' || pathname.startsWith('/docs')) return;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    fail(`body is not JSON: ${text.slice(0, 200)}`);
  }
  if (res.status >= 400 && !type.startsWith('application/problem+json')) fail(`error with content-type ${type}`);
  if (res.status < 400 && !type.startsWith('application/json')) fail(`success with content-type ${type}`);
  if (res.status === 401 && !res.headers.get('www-authenticate')) fail('401 without WWW-Authenticate');
  if (
    (res.status === 429 || (res.status === 503 && (body as { code?: string })?.code !== 'google_not_configured')) &&
    !res.headers.get('retry-after')
  ) {
    fail('no Retry-After');
  }
  const operation = contract.router.matchOperation({ method, path: pathname, headers: {} });
  if (!operation) {
    const problem = contract.validateResponse(body, 'healthz', 500); // the shared default problem
    if (problem.errors?.length) fail(`not a Problem: ${JSON.stringify(problem.errors)}`);
    return;
  }
  const responses = (operation.responses ?? {}) as Record<string, unknown>;
  if (!responses[String(res.status)] && !responses.default) fail('status not documented');
  const result = contract.validateResponse(body, operation, res.status);
  if (result.errors?.length)
    fail(`body does not match the contract: ${JSON.stringify(result.errors)} in ${text.slice(0, 300)}`);
}

/** fetch that validates every response against the contract before the SDK sees it. */
export const validatingFetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
  const request = new Request(input, init);
  const res = await fetch(request);
  await checkResponse(request.method, request.url, res);
  return res;
};

// ---------------------------------------------------------------- servers

export interface TestServer {
  url: string;
  client: Client;
  /** A client that authenticates every call with this token or key (JWT or rst_ key). */
  as(token: string): Client;
  /** Every line the server wrote to stdout and stderr so far. */
  output(): string;
  /** Waits for the n-th (default: first) console-delivered mail to this address. */
  consoleMail(to: string, nth?: number): Promise<{ subject: string; text: string }>;
  /** Log lines (parsed pino JSON) so far. */
  logs(): Record<string, unknown>[];
  /** Waits until a log line matches. */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Runs SQL against the server's database (PostgreSQL only: PGlite is held by the server). */
  sql<T = Record<string, unknown>>(query: string, params?: unknown[]): Promise<T[]>;
  /** Every row of every table as one text, for "no secret is stored" assertions. On PGlite this
   * stops the server first (the embedded database is single-process). */
  dumpDatabase(): Promise<string>;
  databaseUrl: string | undefined;
  dataDir: string | undefined;
  child: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  env?: Record<string, string>;
  /** Run on the same database as this server (a second instance). */
  shareDatabaseWith?: TestServer;
  /** host:port the server dials instead of PostgreSQL's own (a test's TCP proxy); sql() still goes direct. */
  connectThrough?: string;
  /** The file to run, relative to the project (default server.ts; dist/server.js is what npm start runs). */
  entry?: string;
}

async function createDatabase(): Promise<string> {
  const base = new URL(process.env.DATABASE_URL!);
  const name = `rst_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base.href });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  base.pathname = `/${name}`;
  return base.href;
}

async function dropDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = target.pathname.slice(1);
  const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${name} with (force)`);
  } catch {
    // best effort: a leftover test database does no harm
  } finally {
    await admin.end();
  }
}

export async function startServer(opts: StartOptions = {}): Promise<TestServer> {
  const shared = opts.shareDatabaseWith;
  const databaseUrl = shared ? shared.databaseUrl : ON_POSTGRES ? await createDatabase() : undefined;
  if (shared && !databaseUrl) throw new Error('two instances need PostgreSQL (PGlite is single-process)');
  const dataDir = databaseUrl ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'rst-test-'));

  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    ...TEST_ENV,
    ...opts.env,
    PORT: '0',
    HOST: '127.0.0.1',
  };
  if (databaseUrl) {
    const dialed = new URL(databaseUrl);
    if (opts.connectThrough) dialed.host = opts.connectThrough;
    env.DATABASE_URL = dialed.href;
  } else env.DATA_DIR = dataDir!;

  const child = spawn(process.execPath, [path.join(ROOT, opts.entry ?? 'server.ts')], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`server did not start within 30 s:\n${output}`)), 30_000);
    const check = () => {
      const m = /rst auth listening on (http:\/\/\S+)/.exec(output);
      if (m) done(undefined, m[1]);
    };
    const done = (err?: Error, value?: string) => {
      clearTimeout(timer);
      waiters.delete(check);
      if (err) reject(err);
      else resolve(value!);
    };
    waiters.add(check);
    exited.then((code) => done(new Error(`server exited with ${code} before listening:\n${output}`)));
    check();
  });

  const logs = () =>
    output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      });

  let pool: pg.Pool | undefined;
  const sqlPg = async <T>(query: string, params: unknown[] = []): Promise<T[]> => {
    if (!pool) {
      pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
      // pool.end() resolves before its sockets have closed, so the forced DROP DATABASE in stop()
      // can terminate them mid-close: that error would surface as an uncaught exception.
      pool.on('connect', (client) => client.on('error', () => {}));
    }
    return (await pool.query(query, params)).rows as T[];
  };

  const server: TestServer = {
    url,
    client: createClient({ baseUrl: url, fetch: validatingFetch }),
    as: (token) => createClient({ baseUrl: url, fetch: validatingFetch, auth: () => token }),
    output: () => output,
    logs,
    consoleMail: (to, nth = 1) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const mails = [
            ...output.matchAll(
              /----- rst auth mail[^\n]*\nTo: ([^\n]+)\nSubject: ([^\n]*)\n\n([\s\S]*?)\n----- end of mail -----/g,
            ),
          ].filter((m) => m[1] === to.toLowerCase());
          if (mails.length >= nth) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve({ subject: mails[nth - 1]![2]!, text: mails[nth - 1]![3]! });
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no mail #${nth} to ${to} within 10 s`));
        }, 10_000);
        waiters.add(check);
        check();
      }),
    waitForLog: (match, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = logs().find(match);
          if (found) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve(found);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error('log line not seen in time'));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    sql: async <T>(query: string, params?: unknown[]) => {
      if (!databaseUrl) throw new Error('sql() needs PostgreSQL');
      return sqlPg<T>(query, params);
    },
    dumpDatabase: async () => {
      const tablesQuery = `select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`;
      if (databaseUrl) {
        const tables = await sqlPg<{ table_name: string }>(tablesQuery);
        const parts = await Promise.all(
          tables.map(async (t) => JSON.stringify(await sqlPg(`select * from "${t.table_name}"`))),
        );
        return parts.join('\n');
      }
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      const { PGlite } = await import('@electric-sql/pglite');
      const db = new PGlite(dataDir);
      try {
        const tables = (await db.query<{ table_name: string }>(tablesQuery)).rows;
        const parts: string[] = [];
        for (const t of tables) parts.push(JSON.stringify((await db.query(`select * from "${t.table_name}"`)).rows));
        return parts.join('\n');
      } finally {
        await db.close();
      }
    },
    databaseUrl,
    dataDir,
    child,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      const code = await exited;
      await pool?.end();
      if (databaseUrl && !shared) await dropDatabase(databaseUrl);
      if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
  };
  return server;
}

// ---------------------------------------------------------------- helpers

let counter = 0;
/** A unique username/email pair for one test. */
export function uniqueUser(prefix = 'user'): { username: string; email: string; password: string } {
  const id = `${Date.now().toString(36)}${(counter++).toString(36)}${randomBytes(2).toString('hex')}`;
  return {
    username: `${prefix}_${id}`.slice(0, 32),
    email: `${prefix}.${id}@example.test`,
    password: `pass phrase ${randomBytes(6).toString('hex')}`,
  };
}

/** Registers an account and verifies it with the code from the console mailer; returns a JWT. */
export async function registeredUser(
  server: TestServer,
  prefix = 'user',
): Promise<{ username: string; email: string; password: string; id: string; token: string }> {
  const { register, verifyEmail, login } = await import('../generated/sdk.gen.ts');
  const user = uniqueUser(prefix);
  const created = await register({ client: server.client, body: user, throwOnError: true });
  const mail = await server.consoleMail(user.email);
  const code = /code is: (\d{6})/.exec(mail.text)![1]!;
  await verifyEmail({ client: server.client, body: { email: user.email, code }, throwOnError: true });
  const session = await login({
    client: server.client,
    body: { username: user.username, password: user.password },
    throwOnError: true,
  });
  return { ...user, id: created.data.id, token: session.data.access_token };
}
