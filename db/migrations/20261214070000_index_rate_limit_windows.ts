// The sweep deletes counters by the age of their window, in batches: without an index each
// batch would scan the whole table, which a flood of made-up identifiers can make large.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw('create index rate_limits_window_start on rate_limits (window_start)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index rate_limits_window_start');
}
