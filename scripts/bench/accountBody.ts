// The JSON both references answer: one definition, so the one-query baseline and the no-query
// reference send the same bytes and differ only in where the row comes from.

export interface AccountRow {
  id: string;
  username: string;
  email: string;
  email_verified: boolean;
  plan: string;
  created_at: Date;
}

export function accountJson(row: AccountRow): string {
  return JSON.stringify({
    id: row.id,
    username: row.username,
    email: row.email,
    email_verified: row.email_verified,
    plan: row.plan,
    created_at: row.created_at.toISOString(),
  });
}
