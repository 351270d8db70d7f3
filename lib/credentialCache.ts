// What an authenticated read learnt from the database about a credential, kept in this process so
// the next read of the same credential needs no query. It must never accept what the database
// would refuse, so it is only used while it is provably told of every change:
//
// - The database publishes every change that affects a lookup (triggers, migration
//   20261215000000): the account's id on channel rst_credentials. One connection of our own
//   (db/credentialEvents.ts) LISTENs, and each message drops every entry of that account.
// - That connection is checked by a heartbeat it NOTIFYs and must hear back within BOUND_MS; the
//   heartbeat is only sent while the triggers exist, so dropping them also stops the cache.
//   While it is not known to hear (starting, reconnecting, silent, the triggers missing), the
//   cache is empty and bypassed: reads are the indexed query, as with CREDENTIAL_CACHE=off.
// - A read that raced a change cannot store what it read before the change: fill() takes the
//   ticket drawn before the query and refuses when a message about that account (or a flush)
//   was heard since (NOTIFY goes out at commit, after which no new snapshot misses the change).
// - A request that changed something waits, before it answers, until this process has heard
//   everything committed so far (settle(): a heartbeat round trip, NOTIFY keeping commit order),
//   so its own next request, on this instance, never sees the old state.
// - Entries live at most `ttlMs` (a ceiling of 60 s, a second line of defence only), and never
//   past the expiry the database reported for the key or session. There is no negative caching:
//   a key created a moment ago on another instance is simply looked up.
import { randomUUID } from 'node:crypto';
import type { CredentialChannel } from '../db/credentialEvents.ts';
import type { Logger } from './logger.ts';

export interface CredentialCacheOptions {
  enabled: boolean;
  maxEntries: number;
  ttlMs: number;
}

/** How often the listener's heartbeat is sent… */
const HEARTBEAT_MS = 1000;
/** …and how long one (or a settle's) may take to come back before the cache is flushed and bypassed. */
const BOUND_MS = 2000;

export interface CacheEntry<V> {
  accountId: string;
  value: V;
  /** Local clock (ms): the entry is gone from then on. */
  expiresAt: number;
  /** Local clock (ms) of the last use recorded for it (see lib/credentials.ts). */
  usedAt: number;
}

export interface CacheStats {
  hits: number;
  misses: number;
  evictions: number;
  entries: number;
  listening: boolean;
}

/** Drawn before the query whose answer may be stored: where the message stream was then. */
export type Ticket = number;

/** How many recent messages fill() can look back on; a query that missed more stores nothing. */
const RECENT = 1024;
const FLUSH = '*';

export class CredentialCache<V> {
  readonly enabled: boolean;
  private readonly maxEntries: number;
  private readonly ttlMs: number;
  private readonly entries = new Map<string, CacheEntry<V>>();
  private readonly byAccount = new Map<string, Set<string>>();
  /** The accounts (or FLUSH) of the last RECENT messages, by sequence number modulo RECENT. */
  private readonly recent: string[] = new Array(RECENT);
  private seq = 0;
  private readonly stats = { hits: 0, misses: 0, evictions: 0 };

  private channel: CredentialChannel | undefined;
  private log: Logger | undefined;
  private listening = false;
  private stopped = false;
  /** Bumped at each (re)connection: a lost connection's late callbacks are ignored. */
  private epoch = 0;
  private readonly instance = randomUUID();
  private pings = 0;
  private heardPing = 0;
  private readonly waiting = new Map<number, () => void>();
  private heartbeat: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  /** Settles waiting for the ping now in flight, and those for the next one. */
  private inFlight: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  constructor(opts: CredentialCacheOptions) {
    this.enabled = opts.enabled;
    this.maxEntries = opts.maxEntries;
    this.ttlMs = opts.ttlMs;
  }

  /** Whether reads are answered from memory now. */
  get active(): boolean {
    return this.enabled && this.listening;
  }

  /** The entry for `key`, or undefined (absent, expired, or the cache not active). */
  get(key: string, now: number): CacheEntry<V> | undefined {
    if (!this.active) return undefined;
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.remove(key, entry);
      return undefined;
    }
    // Least recently used goes first: a Map iterates in insertion order.
    this.entries.delete(key);
    this.entries.set(key, entry);
    this.stats.hits++;
    return entry;
  }

  /** Where the message stream is, before a lookup whose answer may be stored; undefined: do not store. */
  ticket(): Ticket | undefined {
    if (!this.enabled) return undefined;
    this.stats.misses++;
    return this.listening ? this.seq : undefined;
  }

  /** Stores what a lookup begun at `ticket` found, unless something about the account was heard since. */
  fill(ticket: Ticket, key: string, entry: CacheEntry<V>): void {
    if (!this.active || this.seq - ticket > RECENT) return;
    for (let i = ticket; i < this.seq; i++) {
      const heard = this.recent[i % RECENT];
      if (heard === FLUSH || heard === entry.accountId) return;
    }
    const old = this.entries.get(key);
    if (old) this.remove(key, old, false);
    entry.expiresAt = Math.min(entry.expiresAt, Date.now() + this.ttlMs);
    this.entries.set(key, entry);
    const keys = this.byAccount.get(entry.accountId);
    if (keys) keys.add(key);
    else this.byAccount.set(entry.accountId, new Set([key]));
    if (this.entries.size > this.maxEntries) {
      const [oldestKey, oldest] = this.entries.entries().next().value!;
      this.remove(oldestKey, oldest);
    }
  }

  snapshot(): CacheStats {
    return { ...this.stats, entries: this.entries.size, listening: this.listening };
  }

  /**
   * Resolves once this process has heard every change committed before the call, or has flushed
   * the cache (the listener failed to answer in time). Immediate when the cache is not active:
   * nothing is then served from memory.
   */
  settle(): Promise<void> {
    if (!this.active) return Promise.resolve();
    // One ping serves every settle() that asked before it was sent.
    this.queued ??= (this.inFlight ?? Promise.resolve()).then(() => {
      this.queued = undefined;
      this.inFlight = this.ping();
      return this.inFlight;
    });
    return this.queued;
  }

  /** Starts listening on `channel`; resolves after the first attempt, whether it came up or not. */
  async listen(channel: CredentialChannel, log: Logger): Promise<void> {
    if (!this.enabled) return;
    this.channel = channel;
    this.log = log;
    await this.connect(1000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    clearInterval(this.heartbeat);
    this.listening = false; // a stop is no failure: nothing to warn about
    this.drop('stopping');
    await this.channel?.close();
  }

  private async connect(backoffMs: number): Promise<void> {
    const channel = this.channel!;
    const epoch = ++this.epoch;
    try {
      await channel.open(
        (payload) => epoch === this.epoch && this.heard(payload),
        (err) => epoch === this.epoch && this.fail('listener connection lost', err),
      );
      if (!(await channel.triggersPresent())) {
        throw new Error('the triggers that publish credential changes are missing (migrations pending?)');
      }
      // Up once it has heard itself: LISTEN registered, and messages really come through.
      this.listening = true;
      await this.ping();
      if (!this.listening) throw new Error('heartbeat not heard');
      // Whatever was read before now may have missed a change made while nobody listened.
      this.flush();
      // A heartbeat not heard in time fails the listener (ping()), so silence is noticed too.
      this.heartbeat = setInterval(() => {
        if (epoch === this.epoch && this.listening) void this.settle();
      }, HEARTBEAT_MS);
      this.heartbeat.unref();
      this.log?.info('credential cache listening');
    } catch (err) {
      if (epoch !== this.epoch || this.stopped) return;
      this.listening = false;
      this.log?.warn({ err }, 'credential cache bypassed: cannot listen for changes; retrying');
      await channel.close();
      this.retry = setTimeout(() => void this.connect(Math.min(backoffMs * 2, 10_000)), backoffMs);
      this.retry.unref();
    }
  }

  /** NOTIFYs a heartbeat of this process and waits to hear it, at most BOUND_MS. */
  private ping(): Promise<void> {
    const n = ++this.pings;
    const epoch = this.epoch;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(n);
        if (epoch === this.epoch) this.fail('listener heartbeat not heard in time');
        resolve();
      }, BOUND_MS);
      timer.unref();
      this.waiting.set(n, () => {
        clearTimeout(timer);
        resolve();
      });
      this.channel!.heartbeat(`h:${this.instance}:${n}`).catch((err: unknown) => {
        if (epoch === this.epoch) this.fail('listener heartbeat could not be sent', err);
      });
    });
  }

  private heard(payload: string): void {
    if (payload.startsWith('h:')) {
      const [, instance, n] = payload.split(':');
      if (instance !== this.instance) return; // another process's heartbeat
      // Messages arrive in commit order: hearing ping n means every earlier one was sent too.
      for (let i = this.heardPing + 1; i <= Number(n); i++) {
        this.waiting.get(i)?.();
        this.waiting.delete(i);
      }
      this.heardPing = Math.max(this.heardPing, Number(n));
      return;
    }
    if (payload === FLUSH) this.flush();
    else this.evictAccount(payload);
  }

  private fail(reason: string, err?: unknown): void {
    if (this.stopped || !this.channel) return;
    const wasListening = this.listening;
    this.drop(reason, err);
    if (!wasListening) return;
    clearInterval(this.heartbeat);
    const epoch = ++this.epoch; // late callbacks of the lost connection are ignored from here
    void this.channel.close().then(() => {
      if (epoch === this.epoch && !this.stopped) {
        this.retry = setTimeout(() => void this.connect(1000), 250);
        this.retry.unref();
      }
    });
  }

  /** Stops serving from memory at once and forgets everything. */
  private drop(reason: string, err?: unknown): void {
    if (this.listening) this.log?.warn({ err, reason }, 'credential cache bypassed until the listener is back');
    this.listening = false;
    this.flush();
    // Nobody waits on a listener that is gone: with the cache bypassed there is nothing to settle.
    for (const release of this.waiting.values()) release();
    this.waiting.clear();
  }

  private note(heard: string): void {
    this.recent[this.seq % RECENT] = heard;
    this.seq++;
  }

  private flush(): void {
    this.note(FLUSH);
    this.stats.evictions += this.entries.size;
    this.entries.clear();
    this.byAccount.clear();
  }

  private evictAccount(accountId: string): void {
    this.note(accountId);
    const keys = this.byAccount.get(accountId);
    if (!keys) return;
    this.byAccount.delete(accountId);
    for (const key of keys) {
      if (this.entries.delete(key)) this.stats.evictions++;
    }
  }

  private remove(key: string, entry: CacheEntry<V>, counted = true): void {
    this.entries.delete(key);
    if (counted) this.stats.evictions++;
    const keys = this.byAccount.get(entry.accountId);
    keys?.delete(key);
    if (keys?.size === 0) this.byAccount.delete(entry.accountId);
  }
}
