// A database of its own for every test server: a fresh PGlite folder by default; when DATABASE_URL
// is set (PostgreSQL), a fresh database created on that server and dropped with force afterwards.
// A second instance can share the first one's database (PostgreSQL only: PGlite is single-process).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export const ON_POSTGRES = !!process.env.DATABASE_URL;
/**
 * PostgreSQL itself when DATABASE_URL goes through a pooler (CI's third run sets it): databases
 * are created and dropped there, and tests' own SQL reads there, past the pooler under test.
 */
const DIRECT_URL = process.env.TEST_DIRECT_DATABASE_URL || process.env.DATABASE_URL;
/** Set when the servers under test reach PostgreSQL through a pooler. */
export const THROUGH_POOLER = !!process.env.TEST_DIRECT_DATABASE_URL;
export const DB_LABEL = ON_POSTGRES ? 'PostgreSQL' : 'PGlite';

export interface TestDatabase {
  /** The PostgreSQL database's URL as servers dial it (maybe through a pooler), or undefined on PGlite. */
  url: string | undefined;
  /** The same database on PostgreSQL itself, past any pooler. */
  directUrl: string | undefined;
  /** The PGlite folder, or undefined on PostgreSQL. */
  dataDir: string | undefined;
  /** DATABASE_URL (and DATABASE_LISTEN_URL) or DATA_DIR for a server; `through` (host:port) is
   * dialed instead of PostgreSQL's own, `role` is the user it connects as. */
  env(through?: string, role?: string): Record<string, string>;
  /** Runs SQL directly (PostgreSQL only: PGlite is held by the server). */
  sql<T = Record<string, unknown>>(query: string, params?: unknown[]): Promise<T[]>;
  /** Every row of every table as one text. On PGlite the server must have stopped first. */
  dump(): Promise<string>;
  /** Closes this side's connections, then drops the database (unless shared) or the folder. */
  drop(): Promise<void>;
}

const TABLES = `select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`;

/** Runs on a connection of its own, past any pooler, to DATABASE_URL's database as its user (the admin). */
export async function admin<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: DIRECT_URL });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

async function createPostgres(owner?: string): Promise<string> {
  const name = `rst_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await admin((client) => client.query(`create database ${name}${owner ? ` owner ${owner}` : ''}`));
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `/${name}`;
  return url.href;
}

/** The same database's URL on PostgreSQL itself. */
function direct(url: string): string {
  const at = new URL(DIRECT_URL!);
  at.pathname = new URL(url).pathname;
  return at.href;
}

function onPostgres(url: string, owned: boolean): TestDatabase {
  let pool: pg.Pool | undefined;
  const sql = async <T>(query: string, params: unknown[] = []): Promise<T[]> => {
    if (!pool) {
      pool = new pg.Pool({ connectionString: direct(url), max: 2 });
      // pool.end() resolves before its sockets have closed, so the forced DROP DATABASE in drop()
      // can terminate them mid-close: that error would surface as an uncaught exception.
      // pg-pool re-emits an idle client's error on the pool itself, so both need a listener.
      pool.on('connect', (client) => client.on('error', () => {}));
      pool.on('error', () => {});
    }
    return (await pool.query(query, params)).rows as T[];
  };
  return {
    url,
    directUrl: direct(url),
    dataDir: undefined,
    env: (through, role): Record<string, string> => {
      const dialed = new URL(url);
      if (through) dialed.host = through;
      if (role) dialed.username = role;
      // Behind a pooler the credential cache listens on a direct connection, as the README asks
      // of production. Through a test's proxy it follows DATABASE_URL, so a cut cuts it too.
      if (!THROUGH_POOLER || through) return { DATABASE_URL: dialed.href };
      const listen = new URL(direct(url));
      if (role) listen.username = role;
      return { DATABASE_URL: dialed.href, DATABASE_LISTEN_URL: listen.href };
    },
    sql,
    dump: async () => {
      const tables = await sql<{ table_name: string }>(TABLES);
      const parts = await Promise.all(
        tables.map(async (t) => JSON.stringify(await sql(`select * from "${t.table_name}"`))),
      );
      return parts.join('\n');
    },
    drop: async () => {
      await pool?.end();
      if (!owned) return;
      const name = new URL(url).pathname.slice(1);
      await admin((client) => client.query(`drop database if exists ${name} with (force)`)).catch(() => {
        // best effort: a leftover test database does no harm
      });
    },
  };
}

function onPglite(dataDir: string): TestDatabase {
  return {
    url: undefined,
    directUrl: undefined,
    dataDir,
    env: () => ({ DATA_DIR: dataDir }),
    sql: async () => {
      throw new Error('sql() needs PostgreSQL');
    },
    dump: async () => {
      const { PGlite } = await import('@electric-sql/pglite');
      const db = new PGlite(dataDir);
      try {
        const tables = (await db.query<{ table_name: string }>(TABLES)).rows;
        const parts: string[] = [];
        for (const t of tables) parts.push(JSON.stringify((await db.query(`select * from "${t.table_name}"`)).rows));
        return parts.join('\n');
      } finally {
        await db.close();
      }
    },
    drop: async () => fs.rmSync(dataDir, { recursive: true, force: true }),
  };
}

/** A session of its own on a PostgreSQL database, for a test that holds locks or a transaction
 * open while the server works; errors after a terminate or a cut are the test's to expect. */
export async function directSession(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** A fresh database: PostgreSQL when DATABASE_URL is set (owned by `owner` if given), PGlite otherwise. */
export async function freshDatabase(owner?: string): Promise<TestDatabase> {
  if (ON_POSTGRES) return onPostgres(await createPostgres(owner), true);
  return onPglite(fs.mkdtempSync(path.join(os.tmpdir(), 'rst-test-')));
}

/** The same database for a second instance; dropping it only closes this side's connections. */
export function sharedDatabase(first: TestDatabase): TestDatabase {
  if (!first.url) throw new Error('two instances need PostgreSQL (PGlite is single-process)');
  return onPostgres(first.url, false);
}

/** The rows of a dump (see TestDatabase.dump) from the table that has this column. */
export function dumpedRows(dump: string, column: string): Record<string, unknown>[] {
  return dump
    .split('\n')
    .flatMap((line) => JSON.parse(line) as Record<string, unknown>[])
    .filter((row) => column in row);
}
