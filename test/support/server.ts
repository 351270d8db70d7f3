// A real rst auth server as a child process (the same `server.ts` that `npm start` runs) on port 0
// and a database of its own, with the generated SDK pointed at it through the contract-validating
// fetch, and everything the process writes kept for the test to read.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, type Client } from '../../generated/client/index.ts';
import { validatingFetch } from './contract.ts';
import { freshDatabase, sharedDatabase, type TestDatabase } from './database.ts';
import { consoleMailsIn, type ConsoleMail } from './mail.ts';
import { waitFor } from './wait.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

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
  RATE_LIMIT_REFRESH_IP: '100000/900',
  RATE_LIMIT_AUTH_FAILURE_IP: '100000/900',
};

/**
 * Behind a pooler (CI's third run, through PgBouncer in transaction mode) every server sends
 * unnamed statements: PgBouncer before 1.21 cannot keep named ones across its server connections.
 */
const POOLER_ENV: Record<string, string> =
  process.env.DATABASE_PREPARED_STATEMENTS === undefined
    ? {}
    : { DATABASE_PREPARED_STATEMENTS: process.env.DATABASE_PREPARED_STATEMENTS };

export interface TestServer {
  url: string;
  /** The management listener's URL, when the server was started with MANAGEMENT_PORT. */
  managementUrl: string | undefined;
  client: Client;
  /** A client that authenticates every call with this token or key (JWT or rst_ key). */
  as(token: string): Client;
  /** Every line the server wrote to stdout and stderr so far. */
  output(): string;
  /** Waits for the n-th (default: first) console-delivered mail to this address. */
  consoleMail(to: string, nth?: number): Promise<ConsoleMail>;
  /** Log lines (parsed pino JSON) so far. */
  logs(): Record<string, unknown>[];
  /** Waits until a log line matches. */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Runs SQL against the server's database (PostgreSQL only: PGlite is held by the server). */
  sql<T = Record<string, unknown>>(query: string, params?: unknown[]): Promise<T[]>;
  /** Every row of every table as one text, for "no secret is stored" assertions. On PGlite this
   * stops the server first (the embedded database is single-process). */
  dumpDatabase(): Promise<string>;
  database: TestDatabase;
  child: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  env?: Record<string, string>;
  /** Run on the same database as this server (a second instance). */
  shareDatabaseWith?: TestServer;
  /** Run on this database (e.g. sharedDatabase(one) for instances started at once). */
  database?: TestDatabase;
  /** host:port the server dials instead of PostgreSQL's own (a test's TCP proxy); sql() still goes direct. */
  connectThrough?: string;
  /** A PostgreSQL role the server connects as, owner of its fresh database (sql() stays the admin's). */
  role?: string;
  /** The file to run, relative to the project (default server.ts; dist/server.js is what npm start runs). */
  entry?: string;
}

/** Whether a process (a cluster's worker, say) still exists. */
export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Parsed pino JSON lines of a process's output (other lines, such as console mails, skipped). */
function logLines(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
}

export async function startServer(opts: StartOptions = {}): Promise<TestServer> {
  const database =
    opts.database ??
    (opts.shareDatabaseWith ? sharedDatabase(opts.shareDatabaseWith.database) : await freshDatabase(opts.role));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    ...TEST_ENV,
    ...POOLER_ENV,
    ...opts.env,
    PORT: '0',
    HOST: '127.0.0.1',
    ...database.env(opts.connectThrough, opts.role),
  };
  // The URL from a file instead (both set is refused).
  if (opts.env?.DATABASE_URL_FILE) delete env.DATABASE_URL;
  // A test's own listener URL outranks the direct one the harness gives every server behind a pooler.
  if (opts.env?.DATABASE_LISTEN_URL) env.DATABASE_LISTEN_URL = opts.env.DATABASE_LISTEN_URL;
  const child = spawn(process.execPath, [path.join(ROOT, opts.entry ?? 'server.ts')], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const onData = (chunk: Buffer) => {
    output += chunk.toString('utf8');
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exitCode = code;
      resolve(code);
    }),
  );

  let url: string;
  try {
    url = await waitFor(
      () => {
        if (exitCode !== undefined) throw new Error('exited');
        return /rst auth listening on (http:\/\/\S+)/.exec(output)?.[1];
      },
      'server listening',
      30_000,
    );
  } catch {
    const why = exitCode !== undefined ? `exited with ${exitCode} before listening` : 'did not start within 30 s';
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
    await database.drop();
    throw new Error(`server ${why}:\n${output}`);
  }

  return {
    url,
    managementUrl: /rst auth listening on .*; management: (http:\/\/[^\s)]+)/.exec(output)?.[1],
    client: createClient({ baseUrl: url, fetch: validatingFetch }),
    as: (token) => createClient({ baseUrl: url, fetch: validatingFetch, auth: () => token }),
    output: () => output,
    logs: () => logLines(output),
    consoleMail: (to, nth = 1) => waitFor(() => consoleMailsIn(output, to)[nth - 1], `mail #${nth} to ${to}`),
    waitForLog: (match, timeoutMs = 10_000) => waitFor(() => logLines(output).find(match), 'log line', timeoutMs),
    sql: (query, params) => database.sql(query, params),
    dumpDatabase: async () => {
      if (!database.url) {
        if (child.exitCode === null) child.kill('SIGTERM');
        await exited;
      }
      return database.dump();
    },
    database,
    child,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      const code = await exited;
      await database.drop();
      return code;
    },
  };
}

/**
 * Two servers on one PostgreSQL database for the describe it is called in: started (the second
 * sharing the first one's database) before its tests, handed to `use`, stopped after them.
 */
export function twoInstances(opts: StartOptions, use: (a: TestServer, b: TestServer) => void): void {
  let a: TestServer | undefined;
  let b: TestServer | undefined;
  before(async () => {
    a = await startServer(opts);
    b = await startServer({ ...opts, shareDatabaseWith: a });
    use(a, b);
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
  });
}
