// The credential cache as the service reports it on GET /metrics (its management listener): hits,
// misses, evictions, entries and whether its LISTEN connection is up. A build without the cache
// has none of these series; each is then undefined, and the report says "n/a".
export interface CacheSample {
  hits?: number;
  misses?: number;
  evictions?: number;
  entries?: number;
  listenerUp?: number;
}

const SERIES: Record<keyof CacheSample, string> = {
  hits: 'rst_credential_cache_hits_total',
  misses: 'rst_credential_cache_misses_total',
  evictions: 'rst_credential_cache_evictions_total',
  entries: 'rst_credential_cache_entries',
  listenerUp: 'rst_credential_cache_listener_up',
};

/** Prometheus text → the sum of each metric's samples over its labels (a cache may count API keys
 * and JWTs as two series of one metric). */
export function sumByName(text: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const value = Number(m[2]);
    if (Number.isFinite(value)) sums.set(m[1]!, (sums.get(m[1]!) ?? 0) + value);
  }
  return sums;
}

/** One scrape; undefined when the service has no management listener or does not answer. */
export async function scrapeCache(managementUrl: string | undefined): Promise<CacheSample | undefined> {
  if (!managementUrl) return undefined;
  try {
    const res = await fetch(`${managementUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
    if (res.status !== 200) return undefined;
    const sums = sumByName(await res.text());
    const sample: CacheSample = {};
    for (const [field, name] of Object.entries(SERIES) as [keyof CacheSample, string][]) sample[field] = sums.get(name);
    return sample;
  } catch {
    return undefined;
  }
}

/** What the report prints of the cache: over the measured rounds (after − before) and since start. */
export interface CacheFigures {
  /** hits ÷ (hits + misses) in the rounds, and since the service started */
  hitRatio: { rounds: number; total: number };
  hits: number;
  misses: number;
  evictions: { rounds: number; total: number };
  entries: number;
  /** the listener_up gauge after the rounds; undefined when the service does not report it */
  listenerUp: boolean | undefined;
}

export function cacheFigures(
  before: CacheSample | undefined,
  after: CacheSample | undefined,
): CacheFigures | undefined {
  if (after?.hits === undefined || after.misses === undefined) return undefined;
  const ratio = (h: number, m: number) => (h + m > 0 ? h / (h + m) : NaN);
  const hits = after.hits - (before?.hits ?? 0);
  const misses = after.misses - (before?.misses ?? 0);
  return {
    hitRatio: { rounds: ratio(hits, misses), total: ratio(after.hits, after.misses) },
    hits,
    misses,
    evictions: {
      rounds: (after.evictions ?? NaN) - (before?.evictions ?? 0),
      total: after.evictions ?? NaN,
    },
    entries: after.entries ?? NaN,
    listenerUp: after.listenerUp === undefined ? undefined : after.listenerUp === 1,
  };
}
