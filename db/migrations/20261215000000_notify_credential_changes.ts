// Every change that can make a credential's lookup answer differently is published by the
// database itself, on channel rst_credentials, with the id of the account it concerns: whatever
// wrote it (a handler of any version, housekeeping, an operator's SQL) cannot forget to. Each
// process's credential cache (lib/credentialCache.ts) listens and drops that account's entries.
// NOTIFY is sent at commit and dropped on rollback, in commit order; identical payloads of one
// transaction are sent once, so a bulk update costs one message per account.
//
// Only the columns a lookup reads fire (UPDATE OF): recording last_used_at, the only write on the
// read path, publishes nothing. A TRUNCATE, which fires no row trigger, publishes '*' (drop all).
import type { Knex } from 'knex';

const TABLES = {
  accounts: 'username, email, email_verified, password_hash, google_sub, plan, plan_source',
  api_keys: 'account_id, key_hash, revoked_at, expires_at, scopes',
  sessions: 'account_id, revoked_at, expires_at',
};

export async function up(knex: Knex): Promise<void> {
  // An IF per table: a record's fields are resolved when the statement runs, and accounts has no
  // account_id.
  await knex.raw(`
    create function rst_notify_credentials() returns trigger language plpgsql as $$
    begin
      if tg_op = 'TRUNCATE' then
        perform pg_notify('rst_credentials', '*');
      elsif tg_table_name = 'accounts' then
        perform pg_notify('rst_credentials', old.id::text);
      else
        perform pg_notify('rst_credentials', old.account_id::text);
        if tg_op = 'UPDATE' and new.account_id is distinct from old.account_id then
          perform pg_notify('rst_credentials', new.account_id::text);
        end if;
      end if;
      return null;
    end $$`);
  for (const [table, columns] of Object.entries(TABLES)) {
    await knex.raw(
      `create trigger rst_credentials_${table} after update of ${columns} or delete on ${table}
       for each row execute function rst_notify_credentials()`,
    );
    await knex.raw(
      `create trigger rst_credentials_${table}_truncate after truncate on ${table}
       for each statement execute function rst_notify_credentials()`,
    );
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const table of Object.keys(TABLES)) {
    await knex.raw(`drop trigger rst_credentials_${table}_truncate on ${table}`);
    await knex.raw(`drop trigger rst_credentials_${table} on ${table}`);
  }
  await knex.raw('drop function rst_notify_credentials()');
}

/** The triggers up() creates: the cache serves nothing unless all of them are there. */
export const CREDENTIAL_TRIGGERS = Object.keys(TABLES).flatMap((t) => [
  `rst_credentials_${t}`,
  `rst_credentials_${t}_truncate`,
]);
