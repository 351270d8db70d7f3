// Attempt limits, keyed by the submitted identifier (normalised) and by client IP whether or not
// an account exists, so a 429 reveals nothing. Keys are HMACs under a key of the server's (derived
// like the code key, see deps.ts): the table holds no emails, and without the secret nobody can
// tell from it which email or address a counter belongs to (a plain SHA-256 of an email is one
// dictionary lookup away from the email).
import { createHmac, hkdfSync } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { RateRule } from '../config.ts';
import type { Db } from '../db/knex.ts';
import { hitCounter, readCounters, refundCounter } from '../db/rateLimits.ts';
import { tooManyRequests } from './problems.ts';

/** The eight 16-bit groups of an IPv6 address (with or without `::` and a dotted IPv4 tail). */
function ipv6Groups(ip: string): number[] {
  let text = ip.toLowerCase();
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const front = head ? head.split(':') : [];
  const back = tail ? tail.split(':') : [];
  const middle = tail === undefined ? [] : Array(8 - front.length - back.length).fill('0');
  return [...front, ...middle, ...back].map((g) => Number.parseInt(g, 16));
}

/**
 * The part of a client address that names one client for the per-IP limits: an IPv4 address
 * whole, an IPv6 address by its /64 (RFC 6177: one site, often one host, holds a whole /64 and can
 * pick any address in it), and an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack
 * socket reports for IPv4 clients) as the IPv4 address it carries.
 */
export function clientNetwork(ip: string): string {
  const address = ip.replace(/%.*$/, ''); // a zone index (fe80::1%eth0) names the interface, not the client
  if (isIPv4(address) || !isIPv6(address)) return address;
  const g = ipv6Groups(address);
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff)
    return `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`;
  return `${g
    .slice(0, 4)
    .map((x) => x.toString(16))
    .join(':')}::/64`;
}

/** Counter keys: `name:` + a keyed hash of the normalised value. */
export class LimitKeys {
  readonly #key: Buffer;
  constructor(key: Buffer) {
    this.#key = key;
  }

  /** For a submitted identifier (email or username), in any case and Unicode form. */
  of(name: string, value: string): string {
    const digest = createHmac('sha256', this.#key)
      .update(`${name}\0${value.normalize('NFKC').toLowerCase()}`)
      .digest('base64url');
    return `${name}:${digest.slice(0, 32)}`;
  }

  /** For a client address, by its network (see clientNetwork). */
  ofIp(name: string, ip: string): string {
    return this.of(name, clientNetwork(ip));
  }

  /** The counters keyed by an email address: sign-in failures, wrong codes, resend and forgot
   * requests, email changes to it. */
  emailCounters(email: string): string[] {
    return [
      'login-id',
      'verify-fail',
      'resend-minute',
      'resend-hour',
      'forgot-minute',
      'forgot-hour',
      'email-change-minute',
      'email-change-hour',
    ].map((name) => this.of(name, email));
  }

  /**
   * The counters that name an account, as the operations key them: by its username, by its email
   * and the address of a pending email change, and its own email changes. Counters by IP name a
   * network, not an account, and stay.
   */
  countersOf(account: { id: string; username: string; email: string }, pendingEmail?: string): string[] {
    return [
      this.of('login-id', account.username),
      this.of('email-change-account', account.id),
      ...this.emailCounters(account.email),
      ...(pendingEmail ? this.emailCounters(pendingEmail) : []),
    ];
  }
}

/** The counter keys of a server whose JWT secret (or generated secret) is `secret`. */
export const limitKeysFor = (secret: string): LimitKeys =>
  new LimitKeys(Buffer.from(hkdfSync('sha256', secret, 'rst-auth', 'rate-limit keys', 32)));

/**
 * Counts one attempt against each rule and throws 429 (with Retry-After) when any is over. The
 * counters are read first: a request that one rule already refuses adds nothing to any counter,
 * so a client over its IP limit cannot fill the table with rows for made-up identifiers. Then
 * each is counted with one atomic upsert, so concurrent requests that all passed the read still
 * cannot exceed a limit; one that loses that race gives back what it counted on the other rules.
 * The 429 names the rule that keeps the client waiting longest.
 */
export async function consume(db: Db, checks: { key: string; rule: RateRule }[]): Promise<void> {
  const counters = await readCounters(
    db,
    checks.map(({ key, rule }) => ({ key, windowSeconds: rule.windowSeconds })),
  );
  let over: Over | undefined;
  for (const { key, rule } of checks) {
    const current = counters.get(key);
    if (current && current.count >= rule.limit) over = longest(over, { rule, resetIn: current.resetIn });
  }
  if (over) throw tooManyRequests(over.resetIn, over.rule);

  const counted: string[] = [];
  let lost: Over | undefined;
  for (const { key, rule } of checks) {
    const hit = await hitCounter(db, key, rule.windowSeconds);
    if (hit.count > rule.limit) lost = longest(lost, { rule, resetIn: hit.resetIn });
    else counted.push(key);
  }
  if (lost) {
    await refund(db, counted);
    throw tooManyRequests(lost.resetIn, lost.rule);
  }
}

type Over = { rule: RateRule; resetIn: number };
const longest = (a: Over | undefined, b: Over): Over => (!a || b.resetIn > a.resetIn ? b : a);

export async function refund(db: Db, keys: string[]): Promise<void> {
  for (const key of keys) await refundCounter(db, key);
}
