// The operator's commands (scripts/serviceKey.ts, scripts/migrate.ts) run as processes on a test
// database, as `npm run service-key -- …` runs them: with the service's configuration, on its database.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { freshDatabase, type TestDatabase } from './database.ts';
import { ROOT, TEST_ENV } from './server.ts';

export interface CommandRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

const script = (file: string, database: TestDatabase, args: string[]): Promise<CommandRun> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts', file), ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...TEST_ENV, ...database.env() },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 30_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });

export const serviceKeyCommand = (database: TestDatabase, ...args: string[]) => script('serviceKey.ts', database, args);

/** A fresh database with the schema in place (`npm run migrate`), so keys can be made in it
 * before a server starts on it. */
export async function migratedDatabase(): Promise<TestDatabase> {
  const database = await freshDatabase();
  const run = await script('migrate.ts', database, []);
  if (run.code !== 0) throw new Error(`migrate failed: ${run.stderr}`);
  return database;
}

/** Creates a service key and returns it (the one line the command prints on stdout). */
export async function createServiceKey(database: TestDatabase, name: string): Promise<string> {
  const run = await serviceKeyCommand(database, 'create', name);
  if (run.code !== 0) throw new Error(`service-key create ${name} failed: ${run.stderr}`);
  return run.stdout.trim();
}
