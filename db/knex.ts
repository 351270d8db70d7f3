// Opens the database: PostgreSQL through `pg` when DATABASE_URL is set, otherwise embedded
// PostgreSQL (PGlite) in DATA_DIR, so `npm start` needs nothing installed. Both run the same
// migrations and the same queries.
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
import knexFactory, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import pg from 'pg';
import { migrationSource } from './migrations/index.ts';

// pg returns int8 (count(*), bigserial) as strings; every count here fits a JS number.
pg.types.setTypeParser(20, (v) => Number(v));

export type Db = Knex;

export interface DbOptions {
  databaseUrl: string | undefined;
  dataDir: string;
}

export function openDatabase(opts: DbOptions): Db {
  if (opts.databaseUrl) {
    return knexFactory({
      client: 'pg',
      connection: {
        connectionString: opts.databaseUrl,
        // Bounded waits: when PostgreSQL is unreachable a request fails fast with 503 instead of
        // hanging, and the pool reconnects by itself when the server is back.
        connectionTimeoutMillis: 3000,
        statement_timeout: 5000,
        query_timeout: 6000,
      } as Knex.PgConnectionConfig,
      pool: { min: 0, max: 10, acquireTimeoutMillis: 5000, idleTimeoutMillis: 30_000 },
      acquireConnectionTimeout: 5000,
    });
  }
  // The folder holds every account's hashes and the generated JWT secret: owner-only.
  fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  return knexFactory({
    client: ClientPgLite as unknown as typeof knexFactory.Client,
    dialect: 'postgres',
    connection: { connectionString: pathToFileURL(opts.dataDir).href },
  });
}

export async function migrate(db: Db): Promise<void> {
  await db.migrate.latest({ migrationSource });
}

export async function rollbackAll(db: Db): Promise<void> {
  await db.migrate.rollback({ migrationSource }, true);
}

/** Throws unless the database answers a query. */
export async function ping(db: Db): Promise<void> {
  await db.raw('select 1');
}

/** Driver-independent row count: pg returns int8 as string unless parsed, PGlite returns numbers. */
export const toCount = (v: unknown): number => Number(v ?? 0);

/** A constant SQL text with $n parameters, and the name it is prepared under on PostgreSQL. */
export interface Statement {
  name: string;
  text: string;
}

/** A statement and its values: how a credential's owner is found (see lib/credentials.ts). */
export interface Lookup {
  statement: Statement;
  values: unknown[];
}

/**
 * A constant statement run straight on a connection of the knex pool, for the authenticated-read
 * hot path: the query builder would compile the same SQL again on every request (measured: about
 * half the client CPU of the lookup, ~110 → ~60 µs). On PostgreSQL it is a named prepared
 * statement: each connection parses and plans it once, not on every request (planning the API-key
 * join cost PostgreSQL about as much again as running it). PGlite runs in-process and gets the
 * text. pg and PGlite connections both answer `query(...)` with `{ rows }`, with the same type
 * parsing knex would give.
 */
export async function selectRows<T>(db: Db, statement: Statement, values: unknown[]): Promise<T[]> {
  const connection = await db.client.acquireConnection();
  try {
    const result =
      connection instanceof pg.Client
        ? await connection.query({ name: statement.name, text: statement.text, values })
        : await connection.query(statement.text, values);
    return (result as { rows: T[] }).rows;
  } finally {
    await db.client.releaseConnection(connection);
  }
}
