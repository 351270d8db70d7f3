// Attempt limits, keyed by the submitted identifier (normalised) and by client IP whether or not
// an account exists, so a 429 reveals nothing. Keys are hashed: the table holds no emails.
import { createHash } from 'node:crypto';
import type { RateRule } from '../config.ts';
import type { Db } from '../db/knex.ts';
import { hitCounter, refundCounter } from '../db/rateLimits.ts';
import { tooManyRequests } from './problems.ts';

export const limitKey = (name: string, value: string): string =>
  `${name}:${createHash('sha256').update(value.normalize('NFKC').toLowerCase()).digest('base64url').slice(0, 32)}`;

/** Counts one attempt against each rule and throws 429 (with Retry-After) when any is over. */
export async function consume(db: Db, checks: { key: string; rule: RateRule }[]): Promise<void> {
  // Every rule is counted even when an earlier one is already over, so a client cannot spare one
  // counter by tripping another; the 429 names the rule that keeps it waiting longest.
  let over: { rule: RateRule; resetIn: number } | undefined;
  for (const { key, rule } of checks) {
    const hit = await hitCounter(db, key, rule.windowSeconds);
    if (hit.count > rule.limit && (!over || hit.resetIn > over.resetIn)) over = { rule, resetIn: hit.resetIn };
  }
  if (over) throw tooManyRequests(over.resetIn, over.rule);
}

export async function refund(db: Db, keys: string[]): Promise<void> {
  for (const key of keys) await refundCounter(db, key);
}

/** The counters keyed by an email address: sign-in failures, wrong codes, resend and forgot
 * requests, email changes to it. */
export const emailCounters = (email: string): string[] =>
  [
    'login-id',
    'verify-fail',
    'resend-minute',
    'resend-hour',
    'forgot-minute',
    'forgot-hour',
    'email-change-minute',
    'email-change-hour',
  ].map((name) => limitKey(name, email));

/**
 * The counters that name an account, as the operations key them: by its username, by its email and
 * the address of a pending email change, and its own email changes. Counters by IP name a network,
 * not an account, and stay.
 */
export function countersOf(account: { id: string; username: string; email: string }, pendingEmail?: string): string[] {
  return [
    limitKey('login-id', account.username),
    limitKey('email-change-account', account.id),
    ...emailCounters(account.email),
    ...(pendingEmail ? emailCounters(pendingEmail) : []),
  ];
}
