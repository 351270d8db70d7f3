// The whole first schema. Uniqueness that matters for security (case-insensitive usernames and
// emails, one Google subject per account, key hashes) is enforced by the database itself, so
// concurrent requests cannot slip past a read-then-insert.
import type { Knex } from 'knex';

// One statement per raw() call: PGlite runs parameterised queries through the extended protocol,
// which takes a single statement at a time.
async function run(knex: Knex, sql: string): Promise<void> {
  for (const statement of sql
    .split(/;\s*\n/)
    .map((s) => s.trim())
    .filter(Boolean))
    await knex.raw(statement);
}

export async function up(knex: Knex): Promise<void> {
  await run(
    knex,
    `
    create table accounts (
      id uuid primary key default gen_random_uuid(),
      username text not null,
      email text not null check (email = lower(email)),
      email_verified boolean not null default false,
      password_hash text,
      google_sub text,
      plan text not null default 'free',
      plan_source text not null default 'default' check (plan_source in ('default', 'subscription', 'manual')),
      token_version integer not null default 0,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create unique index accounts_username_lower_key on accounts (lower(username));
    create unique index accounts_email_key on accounts (email);
    create unique index accounts_google_sub_key on accounts (google_sub) where google_sub is not null;

    create table api_keys (
      id uuid primary key default gen_random_uuid(),
      account_id uuid not null references accounts (id) on delete cascade,
      name text not null,
      prefix text not null,
      key_hash text not null,
      created_at timestamptz not null default now(),
      last_used_at timestamptz,
      revoked_at timestamptz
    );
    create unique index api_keys_key_hash_key on api_keys (key_hash);
    create index api_keys_active_by_account on api_keys (account_id, created_at desc) where revoked_at is null;

    create table verification_codes (
      account_id uuid primary key references accounts (id) on delete cascade,
      code_hash text not null,
      attempts integer not null default 0,
      expires_at timestamptz not null,
      created_at timestamptz not null default now()
    );

    create table recovery_tokens (
      id uuid primary key default gen_random_uuid(),
      account_id uuid not null references accounts (id) on delete cascade,
      token_hash text not null,
      expires_at timestamptz not null,
      used_at timestamptz,
      created_at timestamptz not null default now()
    );
    create unique index recovery_tokens_token_hash_key on recovery_tokens (token_hash);
    create index recovery_tokens_account on recovery_tokens (account_id);

    create table outbox (
      id bigint generated always as identity primary key,
      kind text not null,
      recipient text not null,
      payload jsonb not null default '{}',
      secret text,
      attempts integer not null default 0,
      next_attempt_at timestamptz not null default now(),
      sent_at timestamptz,
      last_error text,
      created_at timestamptz not null default now()
    );
    create index outbox_due on outbox (next_attempt_at) where sent_at is null;

    create table rate_limits (
      key text primary key,
      window_start timestamptz not null,
      count integer not null
    );

    create table settings (
      key text primary key,
      value text not null
    );
  `,
  );
}

export async function down(knex: Knex): Promise<void> {
  await run(
    knex,
    `
    drop table settings;
    drop table rate_limits;
    drop table outbox;
    drop table recovery_tokens;
    drop table verification_codes;
    drop table api_keys;
    drop table accounts;
  `,
  );
}
