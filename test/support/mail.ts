// The mails the service sent, as tests read them: codes and tokens come from the mails, never from
// the database. Two ways in: a real SMTP server in the test process (the `smtp-server` package;
// plain SMTP on 127.0.0.1, no STARTTLS, no AUTH), which can refuse mail (451, a temporary failure)
// or go down entirely (port closed) and come back on the same port, to exercise the worker's
// retries; or the console mailer's blocks in a server's output, when no SMTP_URL is set.
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { waitFor } from './wait.ts';

export interface ReceivedMail {
  /** envelope recipients (RCPT TO), lower-cased */
  to: string[];
  from: string;
  headers: Record<string, string>;
  subject: string;
  text: string;
  html: string;
  raw: string;
}

export interface TestSmtp {
  port: number;
  /** SMTP_URL for a server under test */
  url: string;
  messages: ReceivedMail[];
  /** Mails received for this address so far. */
  to(address: string): ReceivedMail[];
  /** Waits for the n-th (default: first) mail to this address. */
  waitFor(address: string, nth?: number, timeoutMs?: number): Promise<ReceivedMail>;
  /** While on, every recipient is refused with 451 (try again later). */
  refuse(on: boolean): void;
  /** RCPT TO commands refused so far. */
  refusals(): number;
  /** Holds the final reply to each message's DATA for this long (a slow server mid-send). */
  answerAfter(ms: number): void;
  /** Messages whose DATA has begun arriving, answered or not. */
  receiving(): number;
  /** Closes the port: connections are refused until up(). */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- a small MIME reader

type Part = { headers: Record<string, string>; body: string };

function splitHeaders(raw: string): Part {
  const at = raw.search(/\r?\n\r?\n/);
  const head = at < 0 ? raw : raw.slice(0, at);
  const body = at < 0 ? '' : raw.slice(at).replace(/^\r?\n\r?\n/, '');
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { headers, body };
}

function decodeBody(part: Part): string {
  const encoding = (part.headers['content-transfer-encoding'] ?? '7bit').toLowerCase();
  if (encoding === 'base64') return Buffer.from(part.body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (encoding === 'quoted-printable') {
    const soft = part.body.replace(/=\r?\n/g, '');
    const bytes: number[] = [];
    for (let i = 0; i < soft.length; i++) {
      if (soft[i] === '=' && /^[0-9A-F]{2}$/i.test(soft.slice(i + 1, i + 3))) {
        bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
        i += 2;
      } else bytes.push(...Buffer.from(soft[i]!, 'utf8'));
    }
    return Buffer.from(bytes).toString('utf8');
  }
  return part.body;
}

/** RFC 2047 encoded words (=?utf-8?Q?…?= / =?utf-8?B?…?=) in a header. */
function decodeWords(value: string): string {
  return value.replace(/=\?([^?]+)\?([QB])\?([^?]*)\?=\s*/gi, (_, _charset, kind: string, data: string) =>
    kind.toUpperCase() === 'B'
      ? Buffer.from(data, 'base64').toString('utf8')
      : decodeBody({ headers: { 'content-transfer-encoding': 'quoted-printable' }, body: data.replace(/_/g, ' ') }),
  );
}

function leaves(part: Part): Part[] {
  const type = part.headers['content-type'] ?? 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (!/^multipart\//i.test(type) || !boundary) return [part];
  const chunks = part.body.split(`--${boundary}`).slice(1);
  return chunks.filter((c) => !c.startsWith('--')).flatMap((c) => leaves(splitHeaders(c.replace(/^\r?\n/, ''))));
}

export function parseMail(raw: string, envelopeTo: string[]): ReceivedMail {
  const top = splitHeaders(raw);
  const parts = leaves(top);
  const find = (type: string) => {
    const part = parts.find((p) => (p.headers['content-type'] ?? 'text/plain').toLowerCase().startsWith(type));
    return part ? decodeBody(part).replace(/\r\n/g, '\n').replace(/\n$/, '') : '';
  };
  return {
    to: envelopeTo,
    from: decodeWords(top.headers.from ?? ''),
    headers: top.headers,
    subject: decodeWords(top.headers.subject ?? ''),
    text: find('text/plain'),
    html: find('text/html'),
    raw,
  };
}

// ---------------------------------------------------------------- the server

export async function startSmtp(): Promise<TestSmtp> {
  const messages: ReceivedMail[] = [];
  let refusing = false;
  let refused = 0;
  let holdMs = 0;
  let started = 0;
  let port = 0;
  let server: SMTPServer | undefined;

  const create = () =>
    new SMTPServer({
      secure: false,
      disabledCommands: ['STARTTLS', 'AUTH'],
      hideSTARTTLS: true,
      authOptional: true,
      logger: false,
      closeTimeout: 100,
      onRcptTo(_address, _session, callback) {
        if (!refusing) return callback();
        refused++;
        const err = Object.assign(new Error('Mailbox busy, try again later'), { responseCode: 451 });
        callback(err);
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        started++;
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          const to = session.envelope.rcptTo.map((r) => r.address.toLowerCase());
          setTimeout(() => {
            messages.push(parseMail(Buffer.concat(chunks).toString('utf8'), to));
            callback();
          }, holdMs);
        });
      },
    });

  const listen = async () => {
    server = create();
    await new Promise<void>((resolve, reject) => {
      server!.server.once('error', reject);
      server!.listen(port, '127.0.0.1', () => resolve());
    });
    port = (server.server.address() as AddressInfo).port;
  };
  const shut = async () => {
    const s = server;
    server = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  await listen();
  const to = (address: string) => messages.filter((m) => m.to.includes(address.toLowerCase()));
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    messages,
    to,
    waitFor: (address, nth = 1, timeoutMs = 15_000) =>
      waitFor(() => to(address)[nth - 1], `mail #${nth} to ${address}`, timeoutMs),
    refuse: (on) => {
      refusing = on;
    },
    refusals: () => refused,
    answerAfter: (ms) => {
      holdMs = ms;
    },
    receiving: () => started,
    down: shut,
    up: listen,
    close: shut,
  };
}

// ---------------------------------------------------------------- reading the mails

/** Email limits reached in seconds: per email 1 per 2 s (default 1 per 60 s) and 3 per hour
 * (default 5), per IP 3 per hour. */
export const TIGHT_EMAIL_LIMITS = {
  RATE_LIMIT_EMAIL_MINUTE: '1/2',
  RATE_LIMIT_EMAIL_HOUR: '3/3600',
  RATE_LIMIT_EMAIL_IP: '3/3600',
};

/**
 * Whether a mailed secret is in a text as it was sent (for "nothing stored raw" checks on a
 * database dump): a six-digit code only as a whole number, since six digits turn up inside hashes
 * and UUIDs by chance; anything longer (a recovery token) anywhere.
 */
export function storedRaw(text: string, secret: string): boolean {
  if (/^\d{6}$/.test(secret)) return new RegExp(`(?<![0-9A-Za-z])${secret}(?![0-9A-Za-z])`).test(text);
  return text.includes(secret);
}

export function codeFrom(mail: { text: string }): string {
  const m = /verification code is: (\d{6})\b/.exec(mail.text);
  if (!m) throw new Error(`no code in mail: ${mail.text}`);
  return m[1]!;
}

/** The code of an email change, from the mail to the new address. */
export function changeCodeFrom(mail: { text: string }): string {
  const m = /email change code is: (\d{6})\b/.exec(mail.text);
  if (!m) throw new Error(`no email change code in mail: ${mail.text}`);
  return m[1]!;
}

/** The token from the reset link (and checks the CLI copy in the same mail agrees). */
export function tokenFrom(mail: { text: string }): string {
  const link = /\/reset-password\?token=([^\s]+)/.exec(mail.text);
  const cli = /recovery token: ([A-Za-z0-9_-]+)/.exec(mail.text);
  if (!link || !cli) throw new Error(`no token in mail: ${mail.text}`);
  const token = decodeURIComponent(link[1]!);
  if (token !== cli[1]) throw new Error('the link and the CLI token differ');
  return token;
}

// ---------------------------------------------------------------- the console mailer

export interface ConsoleMail {
  to: string;
  subject: string;
  text: string;
}

const CONSOLE_MAIL =
  /----- rst auth mail[^\n]*\nTo: ([^\n]+)\nSubject: ([^\n]*)\n\n([\s\S]*?)\n----- end of mail -----/g;

/** The console-delivered mails to this address in a server's output, oldest first. */
export function consoleMailsIn(output: string, to: string): ConsoleMail[] {
  return [...output.matchAll(CONSOLE_MAIL)]
    .filter((m) => m[1] === to.toLowerCase())
    .map((m) => ({ to: m[1]!, subject: m[2]!, text: m[3]! }));
}
