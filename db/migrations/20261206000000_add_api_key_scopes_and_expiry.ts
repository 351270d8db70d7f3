// API keys gain scopes (stored for the product, never interpreted by rst) and an optional expiry.
// Existing keys keep working: no scopes, no expiry.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`alter table api_keys add column scopes text[] not null default '{}'`);
  await knex.raw(`alter table api_keys add column expires_at timestamptz`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`alter table api_keys drop column expires_at`);
  await knex.raw(`alter table api_keys drop column scopes`);
}
