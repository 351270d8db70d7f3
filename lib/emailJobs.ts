// What resend-verification and forgot-password share: the request does the same work whatever
// the email — count it, queue one job row, answer 202 — and the delivery worker decides later
// whether an account needs mail, so neither the body nor the timing tells who has an account.
import { enqueueJob, type JobKind } from '../db/outbox.ts';
import type { Deps } from './deps.ts';
import { consume } from './limits.ts';

export async function acceptEmailJob(
  { config, db, limitKeys, wakeOutboxWorker }: Pick<Deps, 'config' | 'db' | 'limitKeys' | 'wakeOutboxWorker'>,
  kind: JobKind,
  rawEmail: string,
  clientIp: string,
): Promise<void> {
  const email = rawEmail.toLowerCase();
  const name = kind === 'verification_request' ? 'resend' : 'forgot';
  // Counted per request, not per email sent, and whether or not an account has the email, so a
  // 429 tells nothing either. Registration's own email does not touch these counters.
  await consume(db, [
    { key: limitKeys.of(`${name}-minute`, email), rule: config.limits.emailMinute },
    { key: limitKeys.of(`${name}-hour`, email), rule: config.limits.emailHour },
    { key: limitKeys.ofIp(`${name}-ip`, clientIp), rule: config.limits.emailIp },
  ]);
  await enqueueJob(db, kind, email);
  wakeOutboxWorker();
}
