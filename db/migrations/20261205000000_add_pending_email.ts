// An email change proves the new address with a six-digit code, under the same rules as the
// verification of a new account: the code row gains the address it proves. Null is the account's
// own email (registration, resend); set, it is the pending new address of an email change. One
// live code per account either way, so a new change replaces an earlier pending one.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(
    'alter table verification_codes add column new_email text check (new_email is null or new_email = lower(new_email))',
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('alter table verification_codes drop column new_email');
}
