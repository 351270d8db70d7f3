// knex's PostgreSQL dialect, with every failure that happened on the way to the database tagged
// as such. Whether an error means "the database cannot be used right now" is decided by where it
// happened, not by its SQLSTATE or wording: whatever PostgreSQL or the network says while a
// connection is being obtained or established (refused, reset, auth failed after a password
// rotation, the database missing or not accepting connections, too many connections, a shutdown…),
// and whatever a query met when its connection died under it, is a DatabaseUnavailable.
import { createRequire } from 'node:module';
import type { Knex } from 'knex';
import pg from 'pg';
import { DatabaseUnavailable } from './errors.ts';

// knex ships its dialects as CommonJS without type declarations; the base Client's type fits.
type KnexClient = Knex.Client & {
  _query(connection: unknown, obj: unknown): Promise<unknown>;
};
const ClientPg = createRequire(import.meta.url)('knex/lib/dialects/postgres/index.js') as new (
  config: Knex.Config,
) => KnexClient;

/**
 * `err`, tagged when `connection` is a pg client that can no longer be used (its socket ended or
 * failed) or whose query stopped answering (query_timeout): PostgreSQL may still be running that
 * query, so the connection is marked for knex to drop instead of queueing the next query behind it.
 */
export function afterQueryFailure(connection: unknown, err: unknown): unknown {
  if (!(connection instanceof pg.Client)) return err;
  const c = connection as pg.Client & {
    _queryable?: boolean;
    _ending?: boolean;
    _ended?: boolean;
    __knex__disposed?: unknown;
  };
  const readTimeout = err instanceof Error && err.message === 'Query read timeout';
  if (readTimeout) c.__knex__disposed ??= err;
  if (readTimeout || c._queryable === false || c._ending || c._ended || c.__knex__disposed)
    return new DatabaseUnavailable('connection lost', err);
  return err;
}

/** Passed to knex as `client`: transactions build their clients from this class's prototype too. */
export class PgClient extends ClientPg {
  async acquireConnection(): Promise<unknown> {
    try {
      return await super.acquireConnection();
    } catch (err) {
      // Anything the pool or the connection attempt raised: knex's acquire timeout included.
      throw new DatabaseUnavailable('connect', err);
    }
  }

  async _query(connection: unknown, obj: unknown): Promise<unknown> {
    try {
      return await super._query(connection, obj);
    } catch (err) {
      throw afterQueryFailure(connection, err);
    }
  }
}
