// The benchmark's yardstick: the least a server can do for an authenticated read on this stack —
// bare node:http, one primary-key SELECT per request through a `pg` pool of the service's size,
// the row as JSON. No framework, no routing, no validation, no credential check. An endpoint that
// authenticates with one indexed lookup cannot beat it, so `npm run bench` reports the service as
// a ratio of it.
//
//   node scripts/bench/baseline.ts --database-url postgres://… [--port 0] [--host 127.0.0.1] [--pool 10]
//
// GET /account with `x-account-id: <uuid>` → 200 the row, 404 unknown. Prints its URL when ready.
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
    pool: { type: 'string', default: '10' },
  },
});
if (!values['database-url']) {
  console.error('usage: node scripts/bench/baseline.ts --database-url postgres://… [--port 0] [--pool 10]');
  process.exit(2);
}

// A named prepared statement, as the service's authenticated reads send theirs (db/knex.ts,
// selectRows): each connection parses and plans it once, so the yardstick has every advantage
// the service has.
const pool = new pg.Pool({ connectionString: values['database-url'], max: Number(values.pool) });
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const server = http.createServer((req, res) => {
  const id = req.headers['x-account-id'];
  if (typeof id !== 'string' || !UUID.test(id)) {
    res.writeHead(400).end();
    return;
  }
  pool.query<AccountRow>({ name: 'baseline_account', text: 'select * from accounts where id = $1', values: [id] }).then(
    ({ rows }) => {
      const row = rows[0];
      if (!row) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(accountJson(row));
    },
    () => {
      res.writeHead(503).end();
    },
  );
});
server.keepAliveTimeout = 5_000;
server.listen(Number(values.port), values.host, () => {
  const { port } = server.address() as AddressInfo;
  console.log(`baseline listening on http://${values.host}:${port}`);
});

const stop = () => {
  server.close();
  server.closeAllConnections();
  pool.end().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
