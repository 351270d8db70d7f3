// The connection the credential cache hears the database on (see the migration
// 20261215000000_notify_credential_changes.ts for what is published). On PostgreSQL it is one
// pg client of its own, outside the knex pool, on DATABASE_LISTEN_URL or else DATABASE_URL: LISTEN
// is session state, which a pooler in transaction mode cannot keep, so that URL must be a direct
// one. On PGlite the same triggers run in-process and PGlite hands their NOTIFYs to a callback.
import pg from 'pg';
import { CREDENTIAL_TRIGGERS } from './migrations/20261215000000_notify_credential_changes.ts';
import type { Db } from './knex.ts';

export const CREDENTIAL_CHANNEL = 'rst_credentials';

export interface CredentialChannel {
  /** LISTENs; `heard` gets each payload, `lost` (once) the failure that ended the connection. */
  open(heard: (payload: string) => void, lost: (err: unknown) => void): Promise<void>;
  /**
   * NOTIFYs `payload` on the channel, in a transaction of its own that commits after everything
   * before it, but only while every trigger is there: a heartbeat also says nobody dropped them
   * (a migration rolled back under a running instance), or it is never heard.
   */
  heartbeat(payload: string): Promise<void>;
  /** Whether every trigger that publishes changes exists (false while that migration is pending). */
  triggersPresent(): Promise<boolean>;
  close(): Promise<void>;
}

// Constant names, written into the text: one statement for pg and for knex alike.
const TRIGGER_COUNT = `(select count(*)::int from pg_trigger
  where not tgisinternal and tgname in (${CREDENTIAL_TRIGGERS.map((t) => `'${t}'`).join(', ')}))`;
const TRIGGERS_SQL = `select ${TRIGGER_COUNT} as n`;
const HEARTBEAT_SQL = `select pg_notify('${CREDENTIAL_CHANNEL}', $1) where ${TRIGGER_COUNT} = ${CREDENTIAL_TRIGGERS.length}`;

/** A direct PostgreSQL connection of its own. */
export function postgresChannel(url: string): CredentialChannel {
  let client: pg.Client | undefined;
  return {
    async open(heard, lost) {
      const c = new pg.Client({
        connectionString: url,
        connectionTimeoutMillis: 3000,
        // A notify or the trigger check that does not answer is a listener that cannot be trusted.
        query_timeout: 3000,
        keepAlive: true,
        application_name: 'rst-auth credential listener',
      });
      client = c;
      let done = false;
      const end = (err: unknown) => {
        if (done) return;
        done = true;
        lost(err);
      };
      c.on('notification', (m) => {
        if (m.channel === CREDENTIAL_CHANNEL && m.payload !== undefined) heard(m.payload);
      });
      c.on('error', end);
      c.on('end', () => end(new Error('listener connection ended')));
      try {
        await c.connect();
        await c.query(`listen ${CREDENTIAL_CHANNEL}`);
      } catch (err) {
        done = true;
        await c.end().catch(() => {});
        throw err;
      }
    },
    async heartbeat(payload) {
      if (!client) throw new Error('not open');
      await client.query(HEARTBEAT_SQL, [payload]);
    },
    async triggersPresent() {
      if (!client) throw new Error('not open');
      const { rows } = await client.query(TRIGGERS_SQL);
      return rows[0].n === CREDENTIAL_TRIGGERS.length;
    },
    async close() {
      const c = client;
      client = undefined;
      if (!c) return;
      // end() waits for the server to see the goodbye, which a silent network never delivers:
      // bounded, then the socket is destroyed.
      let timer: NodeJS.Timeout | undefined;
      const ended = await Promise.race([
        c.end().then(
          () => true,
          () => true,
        ),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), 500);
        }),
      ]);
      clearTimeout(timer);
      if (!ended) (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    },
  };
}

interface PGliteLike {
  listen(channel: string, callback: (payload: string) => void): Promise<() => Promise<void>>;
}

/**
 * The embedded database: one process, so no connection to lose. Notifies and checks go through
 * knex, which hands out PGlite's single connection one transaction at a time (a query sent past
 * it would land inside whatever transaction is open, and be lost with its rollback).
 */
export function embeddedChannel(db: Db): CredentialChannel {
  let unlisten: (() => Promise<void>) | undefined;
  return {
    async open(heard) {
      const pglite = (await db.client.acquireConnection()) as PGliteLike;
      try {
        unlisten = await pglite.listen(CREDENTIAL_CHANNEL, heard);
      } finally {
        await db.client.releaseConnection(pglite);
      }
    },
    async heartbeat(payload) {
      await db.raw(HEARTBEAT_SQL.replace('$1', '?'), [payload]);
    },
    async triggersPresent() {
      const { rows } = await db.raw(TRIGGERS_SQL);
      return rows[0].n === CREDENTIAL_TRIGGERS.length;
    },
    async close() {
      await unlisten?.().catch(() => {});
      unlisten = undefined;
    },
  };
}
