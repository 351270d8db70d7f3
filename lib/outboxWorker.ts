// The outbox worker: it delivers the email. It polls the outbox (and is woken right after a
// transaction that queued mail commits), turns jobs into messages, sends each message once, and
// retries failures with exponential backoff. With SMTP_URL set it sends through nodemailer;
// without it, it prints the message to stdout, so a person running `npm start` on a laptop reads
// the code in the console.
//
// Delivery is at-least-once by construction and once in practice: a row is claimed under a lease
// (FOR UPDATE SKIP LOCKED, see db/outbox.ts) that outlasts the longest send this worker allows,
// so no second instance takes it while it may still be in flight; only a crash between the SMTP
// server's "250 OK" and the UPDATE that records it can send a message twice.
import nodemailer from 'nodemailer';
import {
  claimDueRow,
  isJob,
  markMailFailed,
  markMailSent,
  takeJob,
  type MailRow,
  type OutboxRow,
} from '../db/outbox.ts';
import type { Config } from '../config.ts';
import type { Deps } from './deps.ts';
import type { MailMessage } from './mail.ts';
import { runRecoveryRequest } from './recovery.ts';
import { runVerificationRequest } from './verification.ts';

export interface OutboxWorker {
  wake(): void;
  /** Takes no new row; resolves once the current one is handled, or after `boundMs` at most. */
  stop(boundMs?: number): Promise<void>;
}

const POLL_MS = 1000;
/** A send is abandoned (and retried later) after this long ... */
const SEND_DEADLINE_MS = 120_000;
/** ... well inside the lease, so a row is never handed to a second worker mid-send. */
const LEASE_SECONDS = 300;
/** 2 s, 4 s, 8 s … capped at 10 minutes: an SMTP outage is ridden out, never dropped. */
export const backoffSeconds = (attempts: number): number => Math.min(600, 2 ** Math.min(Math.max(attempts, 1), 10));

type Transport = (message: MailMessage) => Promise<void>;

function createTransport(config: Readonly<Config>): Transport {
  if (config.mailTransport === 'smtp' && config.smtpUrl) {
    const smtp = nodemailer.createTransport({
      url: config.smtpUrl,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
    });
    return async (m) => {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('SMTP send took too long')), SEND_DEADLINE_MS);
      });
      try {
        await Promise.race([
          smtp.sendMail({
            from: config.mailFrom,
            to: m.to,
            subject: m.subject,
            text: m.text,
            html: m.html,
            // RFC 3834: machine-written mail; auto-responders (vacation replies) stay quiet.
            headers: { 'Auto-Submitted': 'auto-generated' },
          }),
          deadline,
        ]);
      } finally {
        clearTimeout(timer);
      }
    };
  }
  return async (m) => {
    process.stdout.write(
      `\n----- rst auth mail (console delivery; set SMTP_URL to send) -----\nTo: ${m.to}\nSubject: ${m.subject}\n\n${m.text}\n----- end of mail -----\n`,
    );
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function startOutboxWorker(deps: Deps, onDeliveryFailure: () => void = () => {}): OutboxWorker {
  const { db, log, config, codeKey } = deps;
  const send = createTransport(config);
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;

  const runJob = async (row: OutboxRow) => {
    await db.transaction(async (trx) => {
      if (!(await takeJob(trx, row.id))) return;
      if (row.kind === 'verification_request') await runVerificationRequest(trx, codeKey, row.recipient);
      else await runRecoveryRequest(trx, codeKey, row.recipient);
    });
  };

  /** After a message went out, recording it must not fail lightly: a row left unsent would be
   * sent again when its lease runs out. Retried for a good part of the lease. */
  const recordSent = async (id: number) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await markMailSent(db, id);
      } catch (err) {
        if (attempt >= 20) throw err;
        await sleep(3000);
      }
    }
  };

  /** Handles one claimed row; false when the SMTP server failed. */
  const handle = async (row: OutboxRow): Promise<boolean> => {
    if (isJob(row.kind)) {
      try {
        await runJob(row);
      } catch (err) {
        const retryIn = backoffSeconds(row.attempts);
        log.warn(
          { mailId: row.id, kind: row.kind, attempts: row.attempts, retryIn, err },
          'outbox job failed; will retry',
        );
        await markMailFailed(db, row.id, (err as Error).message ?? String(err), retryIn).catch(() => {});
      }
      return true;
    }
    try {
      await send(deps.mailTemplates.render(row as MailRow));
    } catch (err) {
      const retryIn = backoffSeconds(row.attempts);
      // The error text is nodemailer's (SMTP reply or socket error), never the message body.
      const error = (err as Error).message ?? String(err);
      log.warn(
        { mailId: row.id, kind: row.kind, attempts: row.attempts, retryIn, error },
        'mail delivery failed; will retry',
      );
      onDeliveryFailure();
      await markMailFailed(db, row.id, error, retryIn).catch(() => {});
      return false;
    }
    await recordSent(row.id);
    log.info({ mailId: row.id, kind: row.kind, attempts: row.attempts }, 'mail sent');
    return true;
  };

  const drain = async () => {
    // Once the SMTP server fails, the rest of this round handles jobs only: each poll tries one
    // message instead of walking the whole queue into the same error (and into its connection
    // timeout, message after message), while codes and tokens are still issued and queued.
    let smtpFailing = false;
    while (!stopped) {
      const row = await claimDueRow(db, LEASE_SECONDS, smtpFailing);
      if (!row) return;
      if (!(await handle(row))) smtpFailing = true;
    }
  };

  const tick = () => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = drain()
      .catch((err) => log.warn({ err }, 'outbox poll failed'))
      .finally(() => {
        running = undefined;
        if (again && !stopped) {
          again = false;
          tick();
        }
      });
  };

  const timer = setInterval(tick, POLL_MS);
  timer.unref();
  tick();

  return {
    wake: tick,
    stop: async (boundMs = SEND_DEADLINE_MS) => {
      stopped = true;
      clearInterval(timer);
      // A message abandoned mid-send stays leased: no other instance sends it before the lease
      // runs out, and then it is sent again (at-least-once, as after a crash).
      let bound: NodeJS.Timeout | undefined;
      await Promise.race([running, new Promise((resolve) => (bound = setTimeout(resolve, boundMs)))]);
      clearTimeout(bound);
    },
  };
}
