// A TCP proxy of the test's own, put between a server under test and PostgreSQL, so a test can
// take the database away mid-traffic and give it back without touching PostgreSQL itself.
//  - cut('reset'): every open connection is reset and new ones are accepted and reset at once
//    (PostgreSQL restarting, a failover, a firewall sending RST);
//  - cut('blackhole'): open connections stop carrying bytes and new ones are accepted but never
//    answered (a network partition: nothing fails, everything hangs until a timeout);
//  - restore(): new connections go through again (reset ones stay dead; blackholed ones resume).
import net from 'node:net';

export type CutMode = 'reset' | 'blackhole';

export interface TcpProxy {
  /** host:port to dial instead of the target */
  address: string;
  cut(mode?: CutMode): void;
  restore(): void;
  /** connections accepted so far */
  connections(): number;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket | undefined;
  held: boolean;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: CutMode | undefined;
  let accepted = 0;
  const pairs = new Set<Pair>();

  const drop = (pair: Pair) => {
    pairs.delete(pair);
    pair.client.resetAndDestroy();
    pair.upstream?.resetAndDestroy();
  };

  const connect = (pair: Pair) => {
    const upstream = net.connect(target.port, target.host);
    pair.upstream = upstream;
    upstream.setNoDelay(true);
    pair.client.pipe(upstream);
    upstream.pipe(pair.client);
    upstream.on('error', () => drop(pair));
    upstream.on('close', () => drop(pair));
  };

  const server = net.createServer((client) => {
    accepted++;
    const pair: Pair = { client, upstream: undefined, held: false };
    pairs.add(pair);
    client.setNoDelay(true);
    client.on('error', () => drop(pair));
    client.on('close', () => drop(pair));
    if (mode === 'reset') return drop(pair);
    if (mode === 'blackhole') {
      // Accepted, never answered: the client's connect timeout is what ends it.
      pair.held = true;
      client.pause();
      return;
    }
    connect(pair);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;

  return {
    address: `127.0.0.1:${port}`,
    cut(how = 'reset') {
      mode = how;
      for (const pair of [...pairs]) {
        if (how === 'reset') drop(pair);
        else {
          pair.held = true;
          pair.client.unpipe();
          pair.upstream?.unpipe();
          pair.client.pause();
          pair.upstream?.pause();
        }
      }
    },
    restore() {
      mode = undefined;
      for (const pair of pairs) {
        if (!pair.held) continue;
        pair.held = false;
        if (pair.upstream) {
          pair.client.pipe(pair.upstream);
          pair.upstream.pipe(pair.client);
          pair.client.resume();
          pair.upstream.resume();
        } else {
          pair.client.resume();
          connect(pair);
        }
      }
    },
    connections: () => accepted,
    close: async () => {
      for (const pair of [...pairs]) drop(pair);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
