// The email delivery worker. It polls the outbox (and is woken right after a transaction that
// queued mail commits), sends each message once, and retries failures with exponential backoff.
// With SMTP_URL set it sends through nodemailer; without it, it prints the message to stdout,
// so a person running `npm start` on a laptop reads the code in the console.
import nodemailer from 'nodemailer';
import { claimDueMail, markMailFailed, markMailSent } from '../db/outbox.ts';
import type { Deps } from './deps.ts';
import { renderMail, type MailMessage } from './mail.ts';

export interface Mailer {
  wake(): void;
  stop(): Promise<void>;
}

const POLL_MS = 1000;
const LEASE_SECONDS = 120;
const BATCH = 10;
/** 2 s, 4 s, 8 s … capped at 10 minutes: an SMTP outage is ridden out, never dropped. */
export const backoffSeconds = (attempts: number): number => Math.min(600, 2 ** Math.min(attempts, 10));

type Transport = (message: MailMessage) => Promise<void>;

function createTransport(deps: Deps): Transport {
  const { config } = deps;
  if (config.smtpUrl) {
    const smtp = nodemailer.createTransport({
      url: config.smtpUrl,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
    });
    return async (m) => {
      await smtp.sendMail({ from: config.mailFrom, to: m.to, subject: m.subject, text: m.text, html: m.html });
    };
  }
  return async (m) => {
    process.stdout.write(`\n----- rst auth mail (console delivery; set SMTP_URL to send) -----\nTo: ${m.to}\nSubject: ${m.subject}\n\n${m.text}\n----- end of mail -----\n`);
  };
}

export function startMailer(deps: Deps): Mailer {
  const { db, log, config } = deps;
  const send = createTransport(deps);
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;

  const drain = async () => {
    for (;;) {
      const rows = await claimDueMail(db, BATCH, LEASE_SECONDS);
      if (rows.length === 0) return;
      for (const row of rows) {
        try {
          await send(renderMail(row, config.appUrl));
          await markMailSent(db, row.id);
          log.info({ mailId: row.id, kind: row.kind }, 'mail sent');
        } catch (err) {
          const retryIn = backoffSeconds(row.attempts);
          log.warn({ mailId: row.id, kind: row.kind, attempts: row.attempts, retryIn, error: (err as Error).message }, 'mail delivery failed; will retry');
          await markMailFailed(db, row.id, (err as Error).message ?? String(err), retryIn).catch(() => {});
        }
      }
      if (stopped) return;
    }
  };

  const tick = () => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = drain()
      .catch((err) => log.warn({ error: (err as Error).message }, 'outbox poll failed'))
      .finally(() => {
        running = undefined;
        if (again && !stopped) {
          again = false;
          tick();
        }
      });
  };

  timer = setInterval(tick, POLL_MS);
  timer.unref();
  tick();

  return {
    wake: tick,
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
