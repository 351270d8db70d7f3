// Password policy and password hashing.
//
// Policy follows NIST SP 800-63B: length and a blocklist, no composition rules. Passwords are
// NFKC-normalised before every check and before hashing, so the same passphrase typed on two
// keyboards (composed vs decomposed accents, full-width digits) is the same password.
//
// Hashing is scrypt-kdf at OWASP strength, always async (it runs on the libuv pool, never on the
// event loop), behind a bounded queue: at most `concurrency` hashes run at once and at most
// `maxQueue` wait; past that the caller gets 503 server_busy instead of an unbounded backlog.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import * as scryptModule from 'scrypt-kdf';
import { dictionary } from '@zxcvbn-ts/language-common';
import { scryptCostProblem } from '../config.ts';
import { problem } from './problems.ts';

// scrypt-kdf 4 ships one default export at run time while its .d.ts declares named exports.
const Scrypt = (scryptModule as unknown as { default: typeof scryptModule }).default;

export const PASSWORD_MAX_LENGTH = 256;
/** A stored hash asking for more than 2^20 iterations is refused rather than computed (DoS), and
 * so is one above the memory and work caps that configuration obeys (scryptCostProblem). */
const MAX_STORED_LOG_N = 20;

// ~49k common and breached passwords shipped with zxcvbn-ts, lower-cased.
const COMMON = new Set(dictionary['passwords-common'] as string[]);

export const normalizePassword = (password: string): string => password.normalize('NFKC');

/** Throws 400 weak_password with a detail a person can act on. */
export function checkPasswordPolicy(
  password: string,
  ctx: { minLength: number; username?: string; email?: string },
): string {
  const pw = normalizePassword(password);
  const weak = (detail: string) => problem('weak_password', { detail });
  const length = [...pw].length;
  if (length < ctx.minLength) throw weak(`Use at least ${ctx.minLength} characters.`);
  if (length > PASSWORD_MAX_LENGTH) throw weak(`Use at most ${PASSWORD_MAX_LENGTH} characters.`);
  const lower = pw.toLowerCase();
  if (COMMON.has(lower)) throw weak('This password is on a list of common passwords; choose another.');
  const contextWords = [ctx.username, ctx.email?.split('@')[0]]
    .map((w) => w?.normalize('NFKC').toLowerCase())
    .filter((w): w is string => !!w && w.length >= 3);
  if (contextWords.some((w) => lower.includes(w))) throw weak('The password must not contain your username or email.');
  return pw;
}

export interface ScryptParams {
  logN: number;
  r: number;
  p: number;
}

export class PasswordHasher {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly dummy: Promise<Uint8Array>;
  readonly params: ScryptParams;
  private readonly concurrency: number;
  private readonly maxQueue: number;

  constructor(params: ScryptParams, concurrency: number, maxQueue: number) {
    this.params = params;
    this.concurrency = concurrency;
    this.maxQueue = maxQueue;
    // Made at start-up and outside the queue: made lazily inside it, a dummy whose turn was shed
    // (queue full) would stay a rejected promise, and every later login of an unknown account
    // would answer 503 while real accounts answer 401, telling them apart.
    this.dummy = Scrypt.kdf(randomBytes(32), params);
  }

  /** Resolves once the dummy hash exists; start-up waits for it, so a broken KDF stops it. */
  async ready(): Promise<void> {
    await this.dummy;
  }

  /** Hashes a password that already passed checkPasswordPolicy (so is NFKC-normalised). */
  async hash(password: string): Promise<string> {
    const key = await this.slot(() => Scrypt.kdf(password, this.params));
    return Buffer.from(key).toString('base64');
  }

  /**
   * Verifies against the stored hash, or, when there is none (unknown or password-less account),
   * against a dummy hash of the same cost, so the answer takes the same time either way.
   */
  async verify(stored: string | null | undefined, password: string): Promise<{ ok: boolean; needsRehash: boolean }> {
    const pw = normalizePassword(password);
    if (!stored) {
      const dummy = await this.dummy;
      await this.slot(() => Scrypt.verify(dummy, pw));
      return { ok: false, needsRehash: false };
    }
    const key = Buffer.from(stored, 'base64');
    let params: ScryptParams;
    try {
      params = Scrypt.viewParams(key);
    } catch {
      return { ok: false, needsRehash: false };
    }
    if (params.logN > MAX_STORED_LOG_N || scryptCostProblem(params)) return { ok: false, needsRehash: false };
    const ok = await this.slot(() => Scrypt.verify(key, pw));
    const needsRehash =
      ok && (params.logN !== this.params.logN || params.r !== this.params.r || params.p !== this.params.p);
    return { ok, needsRehash };
  }

  get queued(): number {
    return this.waiting.length;
  }

  private async slot<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxQueue) {
        throw problem('server_busy', {
          detail: 'Too many sign-ins are being processed; retry in a moment.',
          headers: { 'Retry-After': '1' },
        });
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await work();
    } finally {
      // Hand the slot straight to the next waiter, so `running` never dips and lets a newcomer
      // overtake the queue.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}

/**
 * Lowers the scheduling priority of libuv's pool threads, where scrypt runs, to `nice`. Hashing
 * never blocks the event loop, but on a small machine two hashes in flight take both cores, and
 * every request then waits its turn behind them; at a lower priority the kernel gives requests
 * the CPU first and hashing what is left, so a login storm slows logins instead of every read.
 * Linux only: it names the pool threads `libuv-worker` and lets setpriority() take a thread id.
 * Returns how many threads were lowered.
 */
export async function lowerPoolThreadPriority(nice: number): Promise<number> {
  if (nice === 0 || process.platform !== 'linux') return 0;
  // libuv starts every pool thread on the pool's first job; this stat is that job.
  await fs.stat(process.cwd());
  let lowered = 0;
  // Without a readable /proc (a locked-down sandbox) nothing is lowered and hashing still works.
  const threads = await fs.readdir('/proc/self/task').catch(() => [] as string[]);
  for (const tid of threads) {
    const name = await fs.readFile(`/proc/self/task/${tid}/comm`, 'utf8').catch(() => '');
    if (name.trim() !== 'libuv-worker') continue;
    try {
      os.setPriority(Number(tid), nice);
      lowered++;
    } catch {
      // A thread that ended in between, or a sandbox that forbids it: hashing still works.
    }
  }
  return lowered;
}
