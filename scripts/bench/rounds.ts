// The measured phases: an unmeasured warm-up, then rounds in which service and baseline phases
// alternate (the machine is shared and noisy), the KDF bound measured around each login phase.
import os from 'node:os';
import { type CacheSample, scrapeCache } from './cacheMetrics.ts';
import type { Credentials } from './credentials.ts';
import { measureKdf } from './kdf.ts';
import { type LoadResult, type LoadSpec, runLoad, startLoad } from './load.ts';
import { type Proc, RssWatch } from './servers.ts';
import type { Run, Seeded, Servers } from './setup.ts';

export interface Measured {
  /** every round's result, by phase */
  figures: Record<string, LoadResult[]>;
  /** the KDF bound of every round, in hashes/s */
  kdf: number[];
  rssPeakKb: Map<number, number>;
  loadAfter: number[];
  /** /metrics of the cached and the cache-off service, after the warm-up and after the rounds */
  cache: Record<'cached' | 'off', { before?: CacheSample; after?: CacheSample }>;
}

export async function measure(run: Run, seeded: Seeded, servers: Servers): Promise<Measured> {
  const { services, cacheOff, cluster } = servers;
  const rss = new RssWatch(() => [
    ...Object.values(services).map((s) => s.proc.pid!),
    cacheOff.proc.pid!,
    ...(cluster ? [cluster.proc.pid!] : []),
  ]);
  const cached = services['1k']!;
  const phases = new Phases(run, seeded, servers);
  await phases.warmUp();
  // Read after the warm-up, which fills the cache, so the rounds' own hit ratio can be told apart.
  const cache: Measured['cache'] = {
    cached: { before: await scrapeCache(cached.managementUrl) },
    off: { before: await scrapeCache(cacheOff.managementUrl) },
  };
  for (let round = 1; round <= run.opts.rounds; round++) {
    console.log(`round ${round}/${run.opts.rounds}`);
    await phases.round();
  }
  rss.stop();
  cache.cached.after = await scrapeCache(cached.managementUrl);
  cache.off.after = await scrapeCache(cacheOff.managementUrl);
  return { figures: phases.figures, kdf: phases.kdf, rssPeakKb: rss.peakKb, loadAfter: os.loadavg(), cache };
}

class Phases {
  readonly figures: Record<string, LoadResult[]> = {};
  readonly kdf: number[] = [];
  private readonly run: Run;
  private readonly seeded: Seeded;
  private readonly servers: Servers;
  private readonly svc: Proc;
  private readonly base: Proc;
  private readonly k: Credentials;

  constructor(run: Run, seeded: Seeded, servers: Servers) {
    this.run = run;
    this.seeded = seeded;
    this.servers = servers;
    this.svc = servers.services['1k']!;
    this.base = servers.baselines['1k']!;
    this.k = seeded.creds['1k']!;
  }

  /** JIT, pools and caches of every process warm up once, unmeasured, before round 1. */
  async warmUp(): Promise<void> {
    const { svc, base, k } = this;
    const warmup = this.run.opts.warmup;
    console.log('warming up');
    await runLoad({ ...this.reads(base.url, '/account', k.baseline), duration: warmup + 1 });
    await runLoad({ ...this.reads(this.servers.reference.url, '/account', k.key), duration: warmup + 1 });
    // Key and JWT reads share one warm-up per service, mixed request by request: both paths get
    // thousands of requests either way, and every phase fewer keeps the bench within its minutes.
    for (const target of [svc, this.servers.cacheOff, ...(this.servers.cluster ? [this.servers.cluster] : [])]) {
      await runLoad({ ...this.reads(target.url, '/v1/me/account', [...k.key, ...k.jwt]), duration: warmup + 1 });
    }
    await runLoad({
      ...this.reads(svc.url, '/v1/auth/introspect', k.introspect),
      method: 'POST',
      duration: warmup + 1,
    });
    await runLoad(this.logins(3));
  }

  async round(): Promise<void> {
    const { svc, base, k } = this;
    const { cluster, services, baselines, reference: ref, cacheOff: off } = this.servers;
    this.record('baseline', await runLoad(this.reads(base.url, '/account', k.baseline), base.proc.pid));
    this.record('reference', await runLoad(this.reads(ref.url, '/account', k.key), ref.proc.pid));
    this.record('key', await runLoad(this.reads(svc.url, '/v1/me/account', k.key), svc.proc.pid));
    this.record('jwt', await runLoad(this.reads(svc.url, '/v1/me/account', k.jwt), svc.proc.pid));
    this.record('key cache off', await runLoad(this.reads(off.url, '/v1/me/account', k.key), off.proc.pid));
    this.record('jwt cache off', await runLoad(this.reads(off.url, '/v1/me/account', k.jwt), off.proc.pid));
    const introspect = { ...this.reads(svc.url, '/v1/auth/introspect', k.introspect), method: 'POST' as const };
    this.record('introspect', await runLoad(introspect, svc.proc.pid));
    if (cluster) {
      const pid = cluster.proc.pid;
      this.record('key WEB_CONCURRENCY=2', await runLoad(this.reads(cluster.url, '/v1/me/account', k.key), pid));
      this.record('jwt WEB_CONCURRENCY=2', await runLoad(this.reads(cluster.url, '/v1/me/account', k.jwt), pid));
    }
    // The bound is measured just before and just after the logins and averaged, so a burst of
    // outside load during one of them does not decide the ratio on its own.
    const before = await this.kdfBound('KDF bound (before)');
    this.record('login', await runLoad(this.logins(this.run.opts.kdfDuration)));
    const after = await this.kdfBound('KDF bound (after)');
    this.kdf.push((before + after) / 2);
    const svcStorm = await this.underStorm(this.reads(svc.url, '/v1/me/account', k.key));
    this.record('key during storm', svcStorm.read);
    this.record('login (storm, service)', svcStorm.storm);
    const baseStorm = await this.underStorm(this.reads(base.url, '/account', k.baseline));
    this.record('baseline during storm', baseStorm.read);
    this.record('login (storm, baseline)', baseStorm.storm);
    if (services['1m']) {
      const m = this.seeded.creds['1m']!;
      const big = services['1m'];
      const bigBase = baselines['1m']!;
      this.record('baseline 1m', await runLoad(this.reads(bigBase.url, '/account', m.baseline), bigBase.proc.pid));
      this.record('key 1m', await runLoad(this.reads(big.url, '/v1/me/account', m.key), big.proc.pid));
      this.record('jwt 1m', await runLoad(this.reads(big.url, '/v1/me/account', m.jwt), big.proc.pid));
    }
  }

  private record(phase: string, r: LoadResult): void {
    this.figures[phase] ??= [];
    this.figures[phase].push(r);
    const rate = r.rps >= 100 ? Math.round(r.rps).toLocaleString('en') : r.rps.toFixed(2);
    const cpu = r.cpuUs === undefined ? '' : `  CPU ${r.cpuUs} µs/req`;
    console.log(
      `  ${phase.padEnd(26)} ${rate.padStart(7)} req/s  p50 ${r.p50} ms  p99 ${r.p99} ms  errors ${r.errors}${cpu}`,
    );
  }

  private reads(url: string, pathName: string, variants: LoadSpec['variants']): LoadSpec {
    const { opts } = this.run;
    return {
      url,
      method: 'GET',
      path: pathName,
      variants,
      connections: opts.connections,
      warmup: opts.warmup,
      duration: opts.duration,
    };
  }

  private logins(duration: number): LoadSpec {
    return {
      url: this.svc.url,
      method: 'POST',
      path: '/v1/auth/login',
      variants: this.k.login,
      connections: this.run.loginConnections,
      warmup: this.run.opts.warmup,
      duration,
    };
  }

  // Reads measured while a login storm keeps the service's KDF saturated (the storm's own warm-up
  // fills the hashing queue before the reads start).
  private async underStorm(read: LoadSpec): Promise<{ read: LoadResult; storm: LoadResult }> {
    const storm = startLoad(this.logins(0));
    await storm.warm;
    const result = await runLoad(read);
    storm.stop();
    return { read: result, storm: await storm.result };
  }

  // Half the login phase's length before it and half after: the bound is sampled for as long as
  // the logins it is compared with, and the round is shorter by one login phase. Never under 2 s,
  // so each thread still completes a few hashes in a quick run (--duration 1).
  private async kdfBound(label: string): Promise<number> {
    const { config, opts } = this.run;
    const bound = await measureKdf({
      params: config.scrypt,
      concurrency: config.kdfConcurrency,
      warmup: opts.warmup,
      duration: Math.max(2, opts.kdfDuration / 2),
    });
    console.log(
      `  ${label.padEnd(26)} ${bound.rate.toFixed(2).padStart(7)} hashes/s (${bound.perThread.map((r) => r.toFixed(2)).join(' + ')})`,
    );
    return bound.rate;
  }
}
