// Rows in, rows out for the api_keys table. Keys are found only by the SHA-256 of the whole key
// (unique index api_keys_key_hash_key); the raw key never reaches this file.
import { type OwnerRow, ownerColumns } from './accounts.ts';
import { type Db, selectRows, toCount } from './knex.ts';
import { withRetry } from './retry.ts';

export interface ApiKeyRow {
  id: string;
  account_id: string;
  name: string;
  prefix: string;
  key_hash: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

export type ApiKeySummary = Pick<ApiKeyRow, 'id' | 'name' | 'prefix' | 'created_at' | 'last_used_at'>;

/** How stale last_used_at may get before a use writes it again (API.md: "within a minute"). */
const TOUCH_AFTER = `interval '60 seconds'`;

/**
 * Inserts a key unless the account already holds `limit` active ones. The account row is locked
 * (SELECT … FOR UPDATE) for the count and the insert, so concurrent creations for one account run
 * one after another and cannot all see "24" and all insert.
 */
export async function insertApiKeyWithinLimit(
  db: Db,
  key: { accountId: string; name: string; prefix: string; hash: string },
  limit: number,
): Promise<ApiKeySummary | 'limit_reached' | 'no_account'> {
  return withRetry(db, async (trx) => {
    const owner = await trx('accounts').where({ id: key.accountId }).forUpdate().first('id');
    if (!owner) return 'no_account';
    const counted = await trx('api_keys')
      .where({ account_id: key.accountId })
      .whereNull('revoked_at')
      .count({ n: '*' })
      .first();
    if (toCount(counted?.n) >= limit) return 'limit_reached';
    const [row] = await trx<ApiKeyRow>('api_keys')
      .insert({ account_id: key.accountId, name: key.name, prefix: key.prefix, key_hash: key.hash })
      .returning(['id', 'name', 'prefix', 'created_at', 'last_used_at']);
    return row as ApiKeySummary;
  });
}

/** Active keys of one account, newest first (served by api_keys_active_by_account). */
export async function listActiveApiKeys(db: Db, accountId: string): Promise<ApiKeySummary[]> {
  return db<ApiKeyRow>('api_keys')
    .where({ account_id: accountId })
    .whereNull('revoked_at')
    .orderBy([
      { column: 'created_at', order: 'desc' },
      { column: 'id', order: 'desc' },
    ])
    .select('id', 'name', 'prefix', 'created_at', 'last_used_at');
}

/**
 * Revokes an active key of this account in one conditional UPDATE. Under concurrent revocations
 * PostgreSQL re-checks `revoked_at is null` on the row after the first writer commits, so exactly
 * one caller gets true. Another account's key, an unknown id and a revoked key all give false.
 */
export async function revokeActiveApiKey(db: Db, accountId: string, keyId: string): Promise<boolean> {
  const rows = await db('api_keys')
    .where({ id: keyId, account_id: accountId })
    .whereNull('revoked_at')
    .update({ revoked_at: db.fn.now() })
    .returning('id');
  return rows.length === 1;
}

/**
 * The whole API-key authentication in one indexed query: the active key by hash, joined to its
 * account. `touchDue` is computed by the database clock so every instance agrees on it. A fixed
 * statement through selectRows: this runs on every key-authenticated request.
 */
const KEY_LOOKUP = {
  name: 'rst_key_lookup',
  text: `select ${ownerColumns('a')}, k.id as api_key_id,
    (k.last_used_at is null or k.last_used_at < now() - ${TOUCH_AFTER}) as api_key_touch_due
  from api_keys k join accounts a on a.id = k.account_id
  where k.key_hash = $1 and k.revoked_at is null`,
};

export async function findAccountByApiKeyHash(
  db: Db,
  keyHash: string,
): Promise<{ account: OwnerRow; keyId: string; touchDue: boolean } | undefined> {
  const [row] = await selectRows<OwnerRow & { api_key_id: string; api_key_touch_due: boolean }>(db, KEY_LOOKUP, [
    keyHash,
  ]);
  if (!row) return undefined;
  const { api_key_id: keyId, api_key_touch_due: touchDue, ...account } = row;
  return { account, keyId, touchDue };
}

/** Records uses of these keys in one statement; keys whose use is already recorded within the
 * minute (by this or another instance) and revoked keys are left alone. */
export async function touchApiKeys(db: Db, keyIds: string[]): Promise<void> {
  await db('api_keys')
    .whereIn('id', keyIds)
    .whereNull('revoked_at')
    .whereRaw(`(last_used_at is null or last_used_at < now() - ${TOUCH_AFTER})`)
    .update({ last_used_at: db.fn.now() });
}
