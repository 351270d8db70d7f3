// Reading GET /metrics as a scraper does: the Prometheus text of a server started with
// METRICS_TOKEN, as `name{labels}` → value.
import { expect } from 'chai';
import type { TestServer } from './server.ts';

export const METRICS_TOKEN = 'metrics-token-for-tests-0123456789';

/** The samples of a Prometheus text exposition, as `name{labels}` → value. */
export function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

export async function scrape(server: TestServer): Promise<Map<string, number>> {
  const res = await fetch(`${server.url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(res.status).to.equal(200);
  expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
  return parseMetrics(await res.text());
}
