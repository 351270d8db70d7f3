// Account and API key rows as the contract shows them.
import type { Account, ApiKey } from '../generated/types.gen.ts';
import type { OwnerRow } from '../db/accounts.ts';
import type { ApiKeySummary } from '../db/apiKeys.ts';

export function accountView(row: OwnerRow): Account {
  const hasPassword = row.has_password;
  const googleLinked = row.google_linked;
  const methods: Account['available_sign_in_methods'] = [];
  if (hasPassword) methods.push('password');
  if (googleLinked) methods.push('google');
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    email_verified: row.email_verified,
    plan: row.plan,
    plan_source: row.plan_source,
    google_linked: googleLinked,
    has_password: hasPassword,
    can_unlink_google: googleLinked && hasPassword,
    available_sign_in_methods: methods,
    created_at: row.created_at.toISOString(),
  };
}

/** What the creation response and the list both show of a key. */
export function apiKeyView(row: ApiKeySummary): Omit<ApiKey, 'last_used_at'> {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    created_at: row.created_at.toISOString(),
    scopes: row.scopes,
    expires_at: row.expires_at?.toISOString() ?? null,
  };
}
