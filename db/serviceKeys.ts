// Rows in, rows out for the service_keys table, and the one statement of an introspection.
// Keys are found only by the SHA-256 of the whole key (unique index service_keys_key_hash_key).
import { type Db, type Lookup, selectRows } from './knex.ts';
import { countHits, type Hit, toHit } from './rateLimits.ts';

export interface ServiceKeySummary {
  id: string;
  name: string;
  prefix: string;
  created_at: Date;
}

/** Inserts a key; 'name_taken' when an active key already has the name. */
export async function insertServiceKey(
  db: Db,
  key: { name: string; prefix: string; hash: string },
): Promise<ServiceKeySummary | 'name_taken'> {
  try {
    const [row] = await db('service_keys')
      .insert({ name: key.name, prefix: key.prefix, key_hash: key.hash })
      .returning(['id', 'name', 'prefix', 'created_at']);
    return row as ServiceKeySummary;
  } catch (err) {
    const e = err as { code?: string; constraint?: string };
    if (e.code === '23505' && e.constraint === 'service_keys_active_name_key') return 'name_taken';
    throw err;
  }
}

/** Active service keys, oldest first. */
export async function listServiceKeys(db: Db): Promise<ServiceKeySummary[]> {
  return db('service_keys')
    .whereNull('revoked_at')
    .orderBy([{ column: 'created_at' }, { column: 'id' }])
    .select('id', 'name', 'prefix', 'created_at');
}

/** Revokes the active key of this name; false when there is none. */
export async function revokeServiceKey(db: Db, name: string): Promise<boolean> {
  const rows = await db('service_keys')
    .where({ name })
    .whereNull('revoked_at')
    .update({ revoked_at: db.fn.now() })
    .returning('id');
  return rows.length === 1;
}

/** The caller's counter: found by the key's hash, counted under its id, so every service key has a
 * limit of its own whatever address it calls from. */
const callerCte = (hashParam: string, windowParam: string) =>
  `with caller as (${countHits(
    `select 'introspect-svc:' || s.id, now(), 1 from service_keys s where s.key_hash = ${hashParam} and s.revoked_at is null`,
    windowParam,
  )})`;

const statements = new Map<string, { name: string; text: string }>();

/**
 * An introspection in one statement: authenticates the service key, counts the call against its
 * limit, and runs the inspected token's own lookup — the very statement an authenticated read runs
 * (lib/credentials.ts), as a subquery. Its $1…$n stay as they are; the caller's hash and window
 * follow. No row: the service key is unknown or revoked. `row` is the lookup's row, if it found one.
 */
export async function introspectAs(
  db: Db,
  caller: { keyHash: string; windowSeconds: number },
  lookup: Lookup | undefined,
): Promise<{ hit: Hit; row: object | undefined } | undefined> {
  const n = lookup?.values.length ?? 0;
  const name = `rst_introspect_${lookup?.statement.name ?? 'none'}`;
  let statement = statements.get(name);
  if (!statement) {
    const cte = callerCte(`$${n + 1}`, `$${n + 2}`);
    statement = {
      name,
      text: lookup
        ? `${cte} select c.count as caller_count, c.reset_in as caller_reset_in, t.*
             from caller c left join (${lookup.statement.text}) t on true`
        : `${cte} select c.count as caller_count, c.reset_in as caller_reset_in from caller c`,
    };
    statements.set(name, statement);
  }
  const [found] = await selectRows<Record<string, unknown>>(db, statement, [
    ...(lookup?.values ?? []),
    caller.keyHash,
    caller.windowSeconds,
  ]);
  if (!found) return undefined;
  const { caller_count, caller_reset_in, ...row } = found;
  const hit = toHit({ count: caller_count, reset_in: caller_reset_in });
  // A left join without a match yields the lookup's columns as nulls: the token was not found.
  const matched = lookup !== undefined && Object.values(row).some((v) => v !== null);
  return { hit, row: matched ? row : undefined };
}
