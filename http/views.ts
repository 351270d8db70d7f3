// Account rows as the contract shows them.
import type { Account } from '../generated/types.gen.ts';
import type { OwnerRow } from '../db/accounts.ts';

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
