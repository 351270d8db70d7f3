// Opens the database: PostgreSQL through `pg` when DATABASE_URL is set, otherwise embedded
// PostgreSQL (PGlite) in DATA_DIR, so `npm start` needs nothing installed. Both run the same
// migrations and the same queries.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import knexFactory, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import pg from 'pg';
import { afterQueryFailure, PgClient } from './pgClient.ts';

// pg returns int8 (count(*), bigserial) as strings; every count here fits a JS number.
pg.types.setTypeParser(20, (v) => Number(v));

export type Db = Knex;

export interface DbOptions {
  databaseUrl: string | undefined;
  dataDir: string;
  /** false: the hot path sends unnamed statements (PgBouncer before 1.21 cannot keep named ones). */
  preparedStatements?: boolean;
}

/**
 * The server-side bound of a statement. It is never sent as session state (a startup parameter
 * or a plain SET): a pooler in transaction mode refuses the first ("unsupported startup
 * parameter") and would leak the second into other clients' transactions. Transactions set it
 * with SET LOCAL as they begin; a single statement outside a transaction gets it from the role's
 * (or database's) own setting, `ALTER ROLE … SET statement_timeout = '5s'`, which every server
 * connection the pooler opens picks up; `query_timeout` bounds the client's wait in every case.
 */
export const STATEMENT_TIMEOUT_MS = 5000;

// knex's own PostgreSQL transaction class: knex exports only the base classes.
const require = createRequire(import.meta.url);
const PgTransaction = require('knex/lib/dialects/postgres/execution/pg-transaction.js') as new (
  ...args: unknown[]
) => { query(connection: unknown, sql: string): Promise<unknown> };

/** BEGIN and the transaction's statement bound in one simple-protocol round trip. */
class BoundedTransaction extends PgTransaction {
  begin(connection: unknown) {
    return this.query(connection, `BEGIN; SET LOCAL statement_timeout = ${STATEMENT_TIMEOUT_MS}`);
  }
}

/** knex's PostgreSQL dialect with connection failures tagged (pgClient.ts) and bounded transactions. */
class BoundedPgClient extends PgClient {
  // knex's declared Transaction type is its builder interface, not the dialect's class built here.
  transaction(...args: unknown[]): Knex.Transaction {
    return new BoundedTransaction(this, ...args) as unknown as Knex.Transaction;
  }
}

/** Databases opened with `preparedStatements: false`: their hot path sends unnamed statements. */
const unnamed = new WeakSet<Db>();

export function openDatabase(opts: DbOptions): Db {
  if (opts.databaseUrl) {
    const db = knexFactory({
      client: BoundedPgClient as unknown as typeof knexFactory.Client,
      connection: {
        connectionString: opts.databaseUrl,
        // Bounded waits: when PostgreSQL (or the pooler) is unreachable a request fails fast with
        // 503 instead of hanging, and the pool reconnects by itself when the server is back.
        connectionTimeoutMillis: 3000,
        query_timeout: STATEMENT_TIMEOUT_MS + 1000,
      } as Knex.PgConnectionConfig,
      pool: { min: 0, max: 10, acquireTimeoutMillis: 5000, idleTimeoutMillis: 30_000 },
      acquireConnectionTimeout: 5000,
    });
    if (opts.preparedStatements === false) unnamed.add(db);
    return db;
  }
  return openEmbedded(opts.dataDir);
}

/**
 * The connection migrations run on: DATABASE_MIGRATION_URL (a direct one, past the pooler) when
 * set, else DATABASE_URL. No statement bound: building an index on a large table takes longer
 * than any request may.
 */
export function openMigrationDatabase(opts: DbOptions & { databaseMigrationUrl?: string | undefined }): Db {
  const url = opts.databaseMigrationUrl ?? opts.databaseUrl;
  if (!url) return openEmbedded(opts.dataDir);
  return knexFactory({
    client: 'pg',
    connection: { connectionString: url, connectionTimeoutMillis: 10_000 } as Knex.PgConnectionConfig,
    pool: { min: 0, max: 2 },
  });
}

function openEmbedded(dataDir: string): Db {
  // The folder holds every account's hashes and the generated JWT secret: owner-only.
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return knexFactory({
    client: ClientPgLite as unknown as typeof knexFactory.Client,
    dialect: 'postgres',
    connection: { connectionString: pathToFileURL(dataDir).href },
  });
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
 * join cost PostgreSQL about as much again as running it), unless the database was opened with
 * `preparedStatements: false` (a pooler whose server connections change under us). PGlite runs in-process and gets the
 * text. pg and PGlite connections both answer `query(...)` with `{ rows }`, with the same type
 * parsing knex would give.
 */
/**
 * A statement's name carries a hash of its text: through a pooler that shares prepared
 * statements between clients, two versions of rst (a rolling deploy) never run each other's
 * statement under one name.
 */
const names = new WeakMap<object, string>();
const nameOf = (statement: Statement): string => {
  let name = names.get(statement);
  if (name === undefined) {
    name = `${statement.name}_${createHash('sha256').update(statement.text).digest('hex').slice(0, 12)}`;
    names.set(statement, name);
  }
  return name;
};

export async function selectRows<T>(db: Db, statement: Statement, values: unknown[]): Promise<T[]> {
  const connection = await db.client.acquireConnection();
  try {
    if (connection instanceof pg.Client && !unnamed.has(db)) {
      try {
        return (await connection.query({ name: nameOf(statement), text: statement.text, values })).rows as T[];
      } catch (err) {
        // "does not exist" for a statement this connection prepared, or "already exists" for one
        // it did not: only a pooler that hands one client several server connections does that
        // (PgBouncer < 1.21 in transaction mode). From then on, unnamed; the lookup is a read, so
        // it is simply asked again.
        const code = (err as { code?: string }).code;
        if (code !== '26000' && code !== '42P05') throw err;
        unnamed.add(db);
      }
    }
    return ((await connection.query(statement.text, values)) as { rows: T[] }).rows;
  } catch (err) {
    throw afterQueryFailure(connection, err);
  } finally {
    await db.client.releaseConnection(connection);
  }
}

/**
 * Runs a `delete … where … in (select … limit ?) returning …` over and over until a round
 * deletes fewer than `batch` rows: housekeeping never holds many row locks or one huge
 * transaction, however much has piled up. `sql` takes `params` and then the batch size (its last
 * `?`). Returns how many rows were deleted in all.
 */
export async function deleteInBatches(db: Db, sql: string, params: Knex.RawBinding[], batch: number): Promise<number> {
  let total = 0;
  for (;;) {
    const { rows } = await db.raw(sql, [...params, batch]);
    total += rows.length;
    if (rows.length < batch) return total;
  }
}

/** The session's statement_timeout in ms as the role (or database) setting gives it; 0 = none. */
export async function readStatementTimeout(db: Db): Promise<number> {
  const { rows } = await db.raw(`select setting::int as ms from pg_settings where name = 'statement_timeout'`);
  return Number(rows[0]?.ms ?? 0);
}
