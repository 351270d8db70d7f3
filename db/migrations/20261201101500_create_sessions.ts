// Server-side sessions (API.md "Version 1.1 — Sessions"). A JWT names its session (`sid`) and is
// accepted only while the row is active, so ending the row ends the JWT on the very next request;
// the per-account token_version counter this replaces is dropped: one revocation mechanism.
//
// Refresh tokens rotate: the session keeps the keyed hash of the one current token, and every
// token it has spent is kept in spent_refresh_tokens, pointing at the session, so a spent token
// presented again is recognised as theft and ends the whole session (RFC 9700, 4.14.2). Both go
// when the session row goes (on delete cascade), and so do all of them with the account.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // One statement per raw() call: PGlite takes a single statement at a time.
  await knex.raw(`
    create table sessions (
      id uuid primary key default gen_random_uuid(),
      account_id uuid not null references accounts (id) on delete cascade,
      method text not null check (method in ('password', 'google')),
      refresh_hash text not null,
      created_at timestamptz not null default now(),
      last_used_at timestamptz not null default now(),
      expires_at timestamptz not null,
      absolute_expires_at timestamptz not null,
      revoked_at timestamptz,
      user_agent text check (char_length(user_agent) <= 256),
      ip text check (char_length(ip) <= 64),
      check (expires_at <= absolute_expires_at)
    )`);
  await knex.raw(`create unique index sessions_refresh_hash_key on sessions (refresh_hash)`);
  await knex.raw(
    `create index sessions_active_by_account on sessions (account_id, created_at desc) where revoked_at is null`,
  );
  await knex.raw(`
    create table spent_refresh_tokens (
      token_hash text primary key,
      session_id uuid not null references sessions (id) on delete cascade
    )`);
  await knex.raw(`create index spent_refresh_tokens_session on spent_refresh_tokens (session_id)`);
  await knex.raw(`alter table accounts drop column token_version`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`alter table accounts add column token_version integer not null default 0`);
  await knex.raw(`drop table spent_refresh_tokens`);
  await knex.raw(`drop table sessions`);
}
