// The emails rst auth sends, rendered from an outbox row at delivery time, so the outbox holds
// the secret (code or token) only until the message has gone out. Every message has a plain-text
// body (CLI users, text-only clients) and an HTML one.
//
// Each kind of message is a pair of templates, `<kind>.txt` (a `Subject:` line, a blank line,
// the body) and `<kind>.html`, with `{{placeholder}}`s. The built-in pair lives in lib/mail-templates/;
// MAIL_TEMPLATES_DIR may replace any file of it. Every template is checked once at start-up: an
// unknown placeholder, or a required one missing (a verification mail without its code), stops
// the start with the file and the placeholder named, instead of sending broken mail later.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../config.ts';
import type { MailKind, MailRow } from '../db/outbox.ts';
import { escapeHtml } from './html.ts';
import { RECOVERY_TTL_SECONDS } from './recovery.ts';
import { CODE_TTL_SECONDS } from './verification.ts';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
}

interface KindSpec {
  /** Every placeholder a template of this kind may use (besides app_name and username). */
  placeholders: readonly string[];
  /** The ones each file must contain: without them the message is useless. */
  required: { txt: readonly string[]; html: readonly string[] };
  /** This kind's placeholder values, from the outbox row's secret and payload. */
  values(secret: string, payload: Record<string, unknown>, appUrl: string): Record<string, string>;
}

const COMMON = ['app_name', 'username'];

/** One entry per kind of message; a new kind is a new entry and a new pair of files. */
export const MAIL_KINDS: Record<MailKind, KindSpec> = {
  verify_email: {
    placeholders: [...COMMON, 'code', 'minutes'],
    required: { txt: ['code'], html: ['code'] },
    values: (secret) => ({ code: secret, minutes: String(CODE_TTL_SECONDS / 60) }),
  },
  reset_password: {
    placeholders: [...COMMON, 'link', 'token', 'minutes'],
    required: { txt: ['link', 'token'], html: ['link'] },
    values: (secret, _payload, appUrl) => ({
      link: resetLink(appUrl, secret),
      token: secret,
      minutes: String(RECOVERY_TTL_SECONDS / 60),
    }),
  },
  // To the new address of an email change: the code that proves it.
  email_change_code: {
    placeholders: [...COMMON, 'code', 'minutes'],
    required: { txt: ['code'], html: ['code'] },
    values: (secret) => ({ code: secret, minutes: String(CODE_TTL_SECONDS / 60) }),
  },
  // To the old address once the change is done: the one warning a hijacked account's owner gets.
  email_changed: {
    placeholders: [...COMMON, 'new_email'],
    required: { txt: ['new_email'], html: ['new_email'] },
    values: (_secret, payload) => ({
      new_email: typeof payload.new_email === 'string' ? payload.new_email : 'another address',
    }),
  },
  // To the address of a deleted account.
  account_deleted: { placeholders: [...COMMON], required: { txt: [], html: [] }, values: () => ({}) },
};

/** The built-in templates: beside the sources, and copied beside dist/ by `npm run build`. */
export const DEFAULT_TEMPLATES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'mail-templates');

const PLACEHOLDER = /\{\{\s*([a-z_]+)\s*\}\}/g;

interface Template {
  subject: string;
  text: string;
  html: string;
}

export interface MailTemplates {
  render(row: MailRow): MailMessage;
}

export function resetLink(appUrl: string, token: string): string {
  return `${appUrl}/reset-password?token=${encodeURIComponent(token)}`;
}

/** Reads and checks every template; throws a ConfigError listing every problem, one line each. */
export function loadMailTemplates(opts: {
  appName: string;
  appUrl: string;
  mailTemplatesDir?: string | undefined;
}): MailTemplates {
  const problems: string[] = [];
  const dir = opts.mailTemplatesDir;
  if (dir !== undefined) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir);
    } catch (err) {
      problems.push(`MAIL_TEMPLATES_DIR: cannot read ${dir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    const known = Object.keys(MAIL_KINDS).flatMap((kind) => [`${kind}.txt`, `${kind}.html`]);
    for (const name of names) {
      // A misspelt file name would otherwise leave the built-in template in use without a word.
      if (/\.(txt|html)$/.test(name) && !known.includes(name))
        problems.push(`MAIL_TEMPLATES_DIR: ${path.join(dir, name)} is not a template (expected ${known.join(', ')})`);
    }
  }

  const read = (kind: string, ext: 'txt' | 'html'): { file: string; body: string } => {
    const own = dir === undefined ? undefined : path.join(dir, `${kind}.${ext}`);
    const file = own !== undefined && fs.existsSync(own) ? own : path.join(DEFAULT_TEMPLATES_DIR, `${kind}.${ext}`);
    return { file, body: fs.readFileSync(file, 'utf8') };
  };
  const check = (file: string, body: string, spec: KindSpec, ext: 'txt' | 'html') => {
    const used = new Set([...body.matchAll(PLACEHOLDER)].map((m) => m[1]!));
    for (const name of used)
      if (!spec.placeholders.includes(name))
        problems.push(
          `MAIL_TEMPLATES_DIR: ${file} uses an unknown placeholder {{${name}}} (known: ${spec.placeholders.map((p) => `{{${p}}}`).join(' ')})`,
        );
    for (const name of spec.required[ext])
      if (!used.has(name)) problems.push(`MAIL_TEMPLATES_DIR: ${file} lacks the placeholder {{${name}}}`);
  };

  const templates = new Map<string, Template>();
  for (const [kind, spec] of Object.entries(MAIL_KINDS)) {
    const txt = read(kind, 'txt');
    const html = read(kind, 'html');
    const m = /^Subject: *(.+)\r?\n\r?\n([\s\S]*)$/.exec(txt.body);
    if (!m) {
      problems.push(`MAIL_TEMPLATES_DIR: ${txt.file} must start with a "Subject: …" line and a blank line`);
      continue;
    }
    check(txt.file, txt.body, spec, 'txt');
    check(html.file, html.body, spec, 'html');
    templates.set(kind, { subject: m[1]!.trim(), text: m[2]!.replace(/\s+$/, ''), html: html.body });
  }
  if (problems.length) throw new ConfigError(problems);

  const fill = (template: string, values: Record<string, string>, encode: (s: string) => string) =>
    template.replace(PLACEHOLDER, (_, name: string) => encode(values[name] ?? ''));

  return {
    render(row) {
      const values: Record<string, string> = {
        app_name: opts.appName,
        username: typeof row.payload.username === 'string' ? row.payload.username : 'there',
        ...MAIL_KINDS[row.kind].values(row.secret ?? '', row.payload, opts.appUrl),
      };
      const t = templates.get(row.kind)!;
      // The subject is a header: whatever a value holds, it stays on one line.
      const subject = fill(t.subject, values, (s) => s.replace(/[\r\n]+/g, ' '));
      return {
        to: row.recipient,
        subject,
        text: `${fill(t.text, values, (s) => s)}\n`,
        html: fill(t.html, values, escapeHtml),
      };
    },
  };
}
