// The sweep that deletes accounts left unverified past UNVERIFIED_ACCOUNT_TTL_HOURS reads them by
// age: a partial index keeps that a short range scan however many verified accounts there are.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw('create index accounts_unverified_created on accounts (created_at) where not email_verified');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index accounts_unverified_created');
}
