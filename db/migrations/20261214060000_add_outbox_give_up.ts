// Mail that gives up cleanly: a message can now end without being sent (refused for good, out of
// attempts, or its code or link expired), recorded in failed_at; expires_at is when the secret it
// carries stops working. The check makes "a finished row keeps no secret" a property of the
// table rather than of every code path that finishes one. The partial indexes serve the worker's
// claim (unfinished rows only) and the retention sweep (finished rows by when they finished).
import type { Knex } from 'knex';

// One statement per raw() call: PGlite's extended protocol takes a single statement at a time.
const UP = [
  'alter table outbox add column failed_at timestamptz',
  'alter table outbox add column expires_at timestamptz',
  'update outbox set secret = null where sent_at is not null',
  `alter table outbox add constraint outbox_finished_keeps_no_secret
     check (secret is null or (sent_at is null and failed_at is null))`,
  'drop index outbox_due',
  'create index outbox_due on outbox (next_attempt_at) where sent_at is null and failed_at is null',
  `create index outbox_finished on outbox ((coalesce(sent_at, failed_at)))
     where sent_at is not null or failed_at is not null`,
  'create index recovery_tokens_expires on recovery_tokens (expires_at)',
];

const DOWN = [
  'drop index recovery_tokens_expires',
  'drop index outbox_finished',
  'drop index outbox_due',
  'create index outbox_due on outbox (next_attempt_at) where sent_at is null',
  'alter table outbox drop constraint outbox_finished_keeps_no_secret',
  // A given-up row would look due again to the old worker: keep it out of its claim.
  'update outbox set sent_at = failed_at where sent_at is null and failed_at is not null',
  'alter table outbox drop column expires_at',
  'alter table outbox drop column failed_at',
];

export async function up(knex: Knex): Promise<void> {
  for (const statement of UP) await knex.raw(statement);
}

export async function down(knex: Knex): Promise<void> {
  for (const statement of DOWN) await knex.raw(statement);
}
