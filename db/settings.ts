import type { Db } from './knex.ts';

/** Reads a setting, creating it with `make()` first if absent; concurrent instances agree on one value. */
export async function getOrCreateSetting(db: Db, key: string, make: () => string): Promise<string> {
  await db('settings').insert({ key, value: make() }).onConflict('key').ignore();
  const row = await db('settings').where({ key }).first('value');
  return row.value as string;
}
