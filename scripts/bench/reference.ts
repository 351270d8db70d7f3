// The bench's second yardstick: the ceiling of a cached read. Bare node:http answering the
// baseline's JSON account body from a Map filled once at start-up, so nothing on the request
// path touches PostgreSQL. A service whose credential cache hits cannot beat it, so its ratio to
// the one-query baseline says how much room a cache can win at all on this machine.
//
//   node scripts/bench/reference.ts --database-url postgres://… [--port 0] [--host 127.0.0.1]
//
// GET /account with `authorization: Bearer <API key>` → 200 the key's account, 401 unknown.
// Prints its URL when ready.
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { type AccountRow, accountJson } from './accountBody.ts';

const { values } = parseArgs({
  options: {
    'database-url': { type: 'string' },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});
if (!values['database-url']) {
  console.error('usage: node scripts/bench/reference.ts --database-url postgres://… [--port 0]');
  process.exit(2);
}

// Keyed by the key's SHA-256, as the service stores keys and as its cache finds them: the hash is
// work a cached read cannot skip, and the Map fills from the database without a raw key ever
// leaving the bench's parent process.
async function loadAccounts(url: string): Promise<Map<string, AccountRow>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<AccountRow & { key_hash: string }>(
      `select k.key_hash, a.id, a.username, a.email, a.email_verified, a.plan, a.created_at
       from api_keys k join accounts a on a.id = k.account_id
       where k.revoked_at is null`,
    );
    return new Map(rows.map(({ key_hash, ...account }) => [key_hash, account]));
  } finally {
    await client.end();
  }
}

const accounts = await loadAccounts(values['database-url']);
const BEARER = /^Bearer +(\S+)$/i;

const server = http.createServer((req, res) => {
  const m = BEARER.exec(req.headers.authorization ?? '');
  const account = m && accounts.get(createHash('sha256').update(m[1]!, 'utf8').digest('hex'));
  if (!account) {
    res.writeHead(401).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end(accountJson(account));
});
server.keepAliveTimeout = 5_000;
server.listen(Number(values.port), values.host, () => {
  const { port } = server.address() as AddressInfo;
  console.log(`reference listening on http://${values.host}:${port} (${accounts.size} accounts in memory)`);
});

const stop = () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
