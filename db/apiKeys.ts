// Rows in, rows out for the api_keys table. Keys are found only by the SHA-256 of the whole key
// (unique index api_keys_key_hash_key); the raw key never reaches this file.
import { type OwnerRow, ownerColumns } from './accounts.ts';
import { type Db, type Lookup, toCount } from './knex.ts';
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
  /** Stored for the product, never interpreted here. */
  scopes: string[];
  /** null: never expires. */
  expires_at: Date | null;
}

export type ApiKeySummary = Pick<
  ApiKeyRow,
  'id' | 'name' | 'prefix' | 'created_at' | 'last_used_at' | 'scopes' | 'expires_at'
>;
const SUMMARY_COLUMNS = ['id', 'name', 'prefix', 'created_at', 'last_used_at', 'scopes', 'expires_at'];

/** How stale last_used_at may get before a use writes it again: 30 s, so that with the credential
 * cache marking a use every 30 s (lib/credentials.ts) it stays within the minute API.md promises. */
const TOUCH_AFTER = `interval '30 seconds'`;
/** A usable key: not revoked and not expired, by the database clock (the same on every instance).
 * Every query that finds, counts, lists or revokes keys says so. */
const ACTIVE = (alias: string) =>
  `${alias}.revoked_at is null and (${alias}.expires_at is null or ${alias}.expires_at > now())`;

/**
 * Inserts a key unless the account already holds `limit` active ones. The account row is locked
 * (SELECT … FOR UPDATE) for the count and the insert, so concurrent creations for one account run
 * one after another and cannot all see "24" and all insert.
 */
export async function insertApiKeyWithinLimit(
  db: Db,
  key: {
    accountId: string;
    name: string;
    prefix: string;
    hash: string;
    scopes: string[];
    expiresInDays: number | undefined;
  },
  limit: number,
): Promise<ApiKeySummary | 'limit_reached' | 'no_account'> {
  return withRetry(db, async (trx) => {
    const owner = await trx('accounts').where({ id: key.accountId }).forUpdate().first('id');
    if (!owner) return 'no_account';
    // An expired key no longer counts: it is refused and unlisted, so it cannot be revoked either.
    const counted = await trx('api_keys as k')
      .where({ account_id: key.accountId })
      .whereRaw(ACTIVE('k'))
      .count({ n: '*' })
      .first();
    if (toCount(counted?.n) >= limit) return 'limit_reached';
    const [row] = await trx<ApiKeyRow>('api_keys')
      .insert({
        account_id: key.accountId,
        name: key.name,
        prefix: key.prefix,
        key_hash: key.hash,
        scopes: key.scopes,
        expires_at:
          key.expiresInDays === undefined ? null : trx.raw('now() + make_interval(days => ?)', [key.expiresInDays]),
      })
      .returning(SUMMARY_COLUMNS);
    return row as ApiKeySummary;
  });
}

/** Active keys of one account, newest first (served by api_keys_active_by_account). */
export async function listActiveApiKeys(db: Db, accountId: string): Promise<ApiKeySummary[]> {
  return db<ApiKeyRow>('api_keys as k')
    .where({ account_id: accountId })
    .whereRaw(ACTIVE('k'))
    .orderBy([
      { column: 'created_at', order: 'desc' },
      { column: 'id', order: 'desc' },
    ])
    .select(SUMMARY_COLUMNS);
}

/**
 * Revokes an active key of this account in one conditional UPDATE. Under concurrent revocations
 * PostgreSQL re-checks `revoked_at is null` on the row after the first writer commits, so exactly
 * one caller gets true. Another account's key, an unknown id and a revoked key all give false.
 */
export async function revokeActiveApiKey(db: Db, accountId: string, keyId: string): Promise<boolean> {
  const rows = await db('api_keys as k')
    .where({ id: keyId, account_id: accountId })
    .whereRaw(ACTIVE('k'))
    .update({ revoked_at: db.fn.now() })
    .returning('id');
  return rows.length === 1;
}

/**
 * The whole API-key authentication in one indexed query: the active key by hash, joined to its
 * account. Expiry and `touchDue` are computed by the database clock so every instance agrees on
 * them. A fixed statement (see selectRows in knex.ts): this runs on every key-authenticated
 * request, and introspection runs the very same text.
 */
const KEY_LOOKUP = {
  name: 'rst_key_lookup',
  text: `select ${ownerColumns('a')}, k.id as api_key_id, k.scopes as api_key_scopes,
    k.created_at as api_key_created_at, k.expires_at as api_key_expires_at,
    extract(epoch from k.expires_at - now())::float8 as api_key_expires_in,
    (k.last_used_at is null or k.last_used_at < now() - ${TOUCH_AFTER}) as api_key_touch_due
  from api_keys k join accounts a on a.id = k.account_id
  where k.key_hash = $1 and ${ACTIVE('k')}`,
};

export interface FoundApiKey {
  account: OwnerRow;
  key: { id: string; scopes: string[]; createdAt: Date; expiresAt: Date | null };
  touchDue: boolean;
  /** Seconds until the key expires by the database clock (null: never), for a cache's bound. */
  expiresIn: number | null;
}

type KeyLookupRow = OwnerRow & {
  api_key_id: string;
  api_key_scopes: string[];
  api_key_created_at: Date;
  api_key_expires_at: Date | null;
  api_key_expires_in: number | null;
  api_key_touch_due: boolean;
};

/** The statement that finds an active key by the SHA-256 of the whole key. */
export const apiKeyLookup = (keyHash: string): Lookup => ({ statement: KEY_LOOKUP, values: [keyHash] });

/** The key and its owner from a row of apiKeyLookup's statement. */
export function foundApiKey(row: object): FoundApiKey {
  const {
    api_key_id: id,
    api_key_scopes: scopes,
    api_key_created_at: createdAt,
    api_key_expires_at: expiresAt,
    api_key_expires_in: expiresIn,
    api_key_touch_due: touchDue,
    ...account
  } = row as unknown as KeyLookupRow;
  return { account, key: { id, scopes, createdAt, expiresAt }, touchDue, expiresIn };
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
