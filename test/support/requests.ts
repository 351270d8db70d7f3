// Requests a test shapes by hand: from a chosen loopback address (a per-IP rate-limit bucket of
// the test's own), alternated pairs timed for "same time whether or not the account exists", and
// owner reads polled until another instance has heard of a revocation.
import http from 'node:http';
import { expect } from 'chai';
import { getAccount } from '../../generated/sdk.gen.ts';
import { checkResponse } from './contract.ts';
import type { TestServer } from './server.ts';
import { sleep } from './wait.ts';

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * POSTs JSON from a chosen loopback address (127.0.0.0/8 all reaches the server), so a test owns
 * its per-IP rate-limit bucket whatever other tests sent from 127.0.0.1. The response is checked
 * against the contract like every SDK call.
 */
export async function postFrom(
  server: TestServer,
  localAddress: string,
  path: string,
  body: unknown,
): Promise<{ status: number; headers: Headers; text: string; json: Record<string, unknown> }> {
  const url = new URL(path, server.url);
  const payload = JSON.stringify(body);
  const res = await new Promise<{ status: number; headers: Headers; text: string }>((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        localAddress,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(r.headers)) if (typeof v === 'string') headers.set(k, v);
          resolve({ status: r.statusCode!, headers, text: Buffer.concat(chunks).toString('utf8') });
        });
        r.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
  await checkResponse('POST', url.href, new Response(res.text || null, { status: res.status, headers: res.headers }));
  return { ...res, json: res.text ? (JSON.parse(res.text) as Record<string, unknown>) : {} };
}

/**
 * Alternates POSTs with body `a` and body `b` (`rounds` of each, after a few warm-up calls) and
 * returns every status, raw body text and latency. Each call starts on a quiet server (a pause
 * after the previous one lets the delivery worker finish), so what is timed is the request path.
 */
export async function alternate(server: TestServer, path: string, a: unknown, b: unknown, rounds = 30) {
  const call = async (body: unknown) => {
    const started = performance.now();
    const res = await fetch(new URL(path, server.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    const ms = performance.now() - started;
    await checkResponse('POST', res.url, new Response(text, { status: res.status, headers: res.headers }));
    return { status: res.status, text, ms };
  };
  for (let i = 0; i < 4; i++) await call(i % 2 ? a : b);
  const results = {
    a: [] as { status: number; text: string; ms: number }[],
    b: [] as { status: number; text: string; ms: number }[],
  };
  for (let i = 0; i < rounds * 2; i++) {
    await sleep(60);
    // a, b, b, a, a, b …: neither side always follows the other.
    const first = Math.floor(i / 2) % 2 === 0 ? 'a' : 'b';
    const side = i % 2 === 0 ? first : first === 'a' ? 'b' : 'a';
    results[side].push(await call(side === 'a' ? a : b));
  }
  return results;
}

/** The status of an owner read (GET /v1/me/account) with this JWT or rst_ key. */
export async function ownerRead(server: TestServer, credential: string): Promise<number> {
  const { response } = await getAccount({ client: server.as(credential) });
  return response!.status;
}

/**
 * Polls an owner read every 10 ms until it is refused, at most `ms` after the call; returns how
 * long that took. For another instance than the one that made the change: it hears of it from
 * PostgreSQL (the credential cache's LISTEN), milliseconds after the commit.
 */
export async function refusedWithin(server: TestServer, credential: string, ms = 100): Promise<number> {
  const started = performance.now();
  for (;;) {
    const status = await ownerRead(server, credential);
    const took = performance.now() - started;
    if (status === 401) return took;
    expect(status).to.equal(200);
    if (took > ms) throw new Error(`still accepted ${Math.round(took)} ms after the change`);
    await sleep(10);
  }
}
