// Service keys identify a product's backend to introspection: a table of their own, so no query
// that authenticates a user can ever find one, and no user credential is found by theirs.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table service_keys (
      id uuid primary key default gen_random_uuid(),
      name text not null check (length(name) between 1 and 64),
      prefix text not null,
      key_hash text not null,
      created_at timestamptz not null default now(),
      revoked_at timestamptz
    )`);
  await knex.raw(`create unique index service_keys_key_hash_key on service_keys (key_hash)`);
  // A name names one active key, so `revoke NAME` is unambiguous; a revoked key frees its name.
  await knex.raw(`create unique index service_keys_active_name_key on service_keys (name) where revoked_at is null`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`drop table service_keys`);
}
