// Migrations are listed here rather than discovered on disk, so they load the same way under
// Node's type stripping, in tests and in production. Append new ones; never edit a landed one.
import type { Knex } from 'knex';
import * as createSchema from './20261130000000_create_schema.ts';
import * as createSessions from './20261201101500_create_sessions.ts';
import * as addPendingEmail from './20261205000000_add_pending_email.ts';
import * as addApiKeyScopesAndExpiry from './20261206000000_add_api_key_scopes_and_expiry.ts';
import * as createServiceKeys from './20261206000100_create_service_keys.ts';
import * as indexUnverifiedAccounts from './20261214050000_index_unverified_accounts.ts';
import * as addOutboxGiveUp from './20261214060000_add_outbox_give_up.ts';
import * as indexRateLimitWindows from './20261214070000_index_rate_limit_windows.ts';
import * as notifyCredentialChanges from './20261215000000_notify_credential_changes.ts';

const migrations: Record<string, Knex.Migration> = {
  '20261130000000_create_schema': createSchema,
  '20261201101500_create_sessions': createSessions,
  '20261205000000_add_pending_email': addPendingEmail,
  '20261206000000_add_api_key_scopes_and_expiry': addApiKeyScopesAndExpiry,
  '20261206000100_create_service_keys': createServiceKeys,
  '20261214050000_index_unverified_accounts': indexUnverifiedAccounts,
  '20261214060000_add_outbox_give_up': addOutboxGiveUp,
  '20261214070000_index_rate_limit_windows': indexRateLimitWindows,
  '20261215000000_notify_credential_changes': notifyCredentialChanges,
};

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations),
  getMigrationName: (name) => name,
  getMigration: async (name) => migrations[name]!,
};
