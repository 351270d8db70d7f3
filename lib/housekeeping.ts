// The periodic sweep every instance runs: what the service keeps only for a while is deleted
// here, in batches. Each task is idempotent and safe to run on several instances at once (the
// deletes skip rows another instance holds), so no leader is needed.
import type { Config } from '../config.ts';
import { deleteStaleUnverifiedAccounts } from '../db/accounts.ts';
import type { Db } from '../db/knex.ts';
import { purgeFinishedMail } from '../db/outbox.ts';
import { deleteExpiredCounters } from '../db/rateLimits.ts';
import { purgeRecoveryTokens } from '../db/recoveryTokens.ts';
import { deleteEndedSessions } from '../db/sessions.ts';
import { purgeVerificationCodes } from '../db/verificationCodes.ts';
import type { Logger } from './logger.ts';

/** A counter whose window started this long ago is dead whatever its rule (the longest is a day). */
const COUNTER_LIFETIME_SECONDS = 2 * 86400;
/** The first sweep waits a little, so a burst of restarting instances does not sweep at once. */
const FIRST_SWEEP_MS = 5000;

export interface Housekeeping {
  stop(): Promise<void>;
}

export async function sweep(db: Db, config: Readonly<Config>, log: Logger): Promise<void> {
  const tasks: [string, () => Promise<number>][] = [
    ['unverified accounts', () => deleteStaleUnverifiedAccounts(db, config.unverifiedAccountTtlHours)],
    ['rate-limit counters', () => deleteExpiredCounters(db, COUNTER_LIFETIME_SECONDS)],
    // Nothing accepts an ended or expired session (or its refresh tokens) any more: forget it.
    ['ended sessions', () => deleteEndedSessions(db, 86400)],
    // RETENTION_DAYS: how long a record of sent or given-up mail and of spent tokens is kept.
    ['finished mail', () => purgeFinishedMail(db, config.retentionDays)],
    ['recovery tokens', () => purgeRecoveryTokens(db, config.retentionDays)],
    ['verification codes', () => purgeVerificationCodes(db, config.retentionDays)],
  ];
  // One failing task (the database briefly away) does not keep the others from running.
  for (const [what, task] of tasks) {
    try {
      const deleted = await task();
      if (deleted > 0) log.info({ deleted, what }, 'housekeeping deleted rows');
    } catch (err) {
      log.warn({ err, what }, 'housekeeping task failed; retried at the next sweep');
    }
  }
}

export function startHousekeeping(db: Db, config: Readonly<Config>, log: Logger): Housekeeping {
  let running: Promise<void> | undefined;
  const run = () => {
    running ??= sweep(db, config, log).finally(() => (running = undefined));
  };
  const first = setTimeout(run, Math.min(FIRST_SWEEP_MS, config.sweepIntervalSeconds * 1000));
  const timer = setInterval(run, config.sweepIntervalSeconds * 1000);
  first.unref();
  timer.unref();
  return {
    stop: async () => {
      clearTimeout(first);
      clearInterval(timer);
      await running;
    },
  };
}
