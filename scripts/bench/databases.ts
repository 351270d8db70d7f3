// The bench's throw-away databases on the PostgreSQL server named by BENCH_DATABASE_URL: each is
// created under a fresh name and dropped at cleanup.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { onCleanup } from './cleanup.ts';

export async function admin<T>(url: string, work: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await work(c);
  } finally {
    await c.end();
  }
}

export function serverVersion(url: string): Promise<string> {
  return admin(url, async (c) => (await c.query('show server_version')).rows[0].server_version as string);
}

/** Creates a database on the server of `adminUrl` and returns its name and URL. */
export async function createBenchDatabase(adminUrl: string, label: string): Promise<{ name: string; url: string }> {
  const name = `rst_bench_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}_${label}`;
  await admin(adminUrl, (c) => c.query(`create database "${name}"`));
  onCleanup(() =>
    admin(adminUrl, (c) => c.query(`drop database if exists "${name}" with (force)`)).then(
      () => undefined,
      (err) => console.error(`could not drop database ${name}: ${err instanceof Error ? err.message : err}`),
    ),
  );
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return { name, url: u.toString() };
}
