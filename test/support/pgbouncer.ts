// A PgBouncer of the test's own, in transaction mode, for the outage test that cuts the link
// between the pooler and PostgreSQL (a TCP proxy of the test's own in between). The binary is
// Debian's: CI's third run says where (PGBOUNCER). It refuses to run as root, so as root it runs
// as postgres, which must be able to read its folder.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from './wait.ts';

export const PGBOUNCER = process.env.PGBOUNCER || 'pgbouncer';

export interface PgBouncer {
  /** host:port to dial */
  address: string;
  stop(): Promise<void>;
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

/** The same settings as .ci/pgbouncer.ini, in front of `target` (host:port). */
export async function startPgBouncer(target: string): Promise<PgBouncer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rst-pgbouncer-'));
  const port = await freePort();
  const [host, targetPort] = target.split(':');
  const ini = fs
    .readFileSync(path.join(import.meta.dirname, '../../.ci/pgbouncer.ini'), 'utf8')
    .replaceAll('@PORT@', String(port))
    .replaceAll('@DIR@', dir)
    .replace('* = host=127.0.0.1 port=5432', `* = host=${host} port=${targetPort}`)
    // A cut upstream is noticed within seconds, not PgBouncer's default 15 s connect wait.
    .replace('[pgbouncer]', '[pgbouncer]\nserver_connect_timeout = 3\nserver_login_retry = 1');
  fs.writeFileSync(path.join(dir, 'pgbouncer.ini'), ini);
  fs.writeFileSync(path.join(dir, 'userlist.txt'), '"postgres" ""\n');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('chown', ['-R', 'postgres', dir]);
  const args = [path.join(dir, 'pgbouncer.ini')];
  const child = asRoot
    ? spawn('su', ['postgres', '-s', '/bin/sh', '-c', `exec ${PGBOUNCER} ${args[0]}`], { stdio: 'ignore' })
    : spawn(PGBOUNCER, args, { stdio: 'ignore' });
  await waitFor(() => accepts(port), 'pgbouncer listening', 10_000);
  const pidFile = path.join(dir, 'pgbouncer.pid');
  return {
    address: `127.0.0.1:${port}`,
    stop: async () => {
      // The pid of PgBouncer itself (under su it is not the child's).
      const pid = Number(fs.readFileSync(pidFile, 'utf8'));
      process.kill(pid, 'SIGTERM');
      await waitFor(() => !fs.existsSync(pidFile), 'pgbouncer stopped', 10_000).catch(() => {});
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
