// The emails rst auth sends, rendered from an outbox row at delivery time, so the outbox holds
// the secret (code or token) only until the message has gone out. Every message has a plain-text
// body (CLI users, text-only clients) and an HTML one.
import type { MailRow } from '../db/outbox.ts';
import { CODE_TTL_SECONDS } from './verification.ts';
import { RECOVERY_TTL_SECONDS } from './recovery.ts';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** What a reset does besides setting the password (API.md: "the mail says so"). */
const RESET_EFFECT =
  'Choosing a new password signs out every session and revokes every API key of the account: create new keys afterwards.';

export function resetLink(appUrl: string, token: string): string {
  return `${appUrl}/reset-password?token=${encodeURIComponent(token)}`;
}

export function renderMail(row: MailRow, appUrl: string): MailMessage {
  const name = typeof row.payload.username === 'string' ? row.payload.username : 'there';
  const secret = row.secret ?? '';
  if (row.kind === 'verify_email') {
    const minutes = CODE_TTL_SECONDS / 60;
    const text = [
      `Hello ${name},`,
      '',
      `Your rst auth verification code is: ${secret}`,
      '',
      `It is valid for ${minutes} minutes and replaces any code sent before.`,
      'If you did not create an account, ignore this email.',
    ].join('\n');
    const html =
      `<p>Hello ${escapeHtml(name)},</p><p>Your rst auth verification code is:</p>` +
      `<p style="font-size:24px;font-weight:bold;letter-spacing:4px">${escapeHtml(secret)}</p>` +
      `<p>It is valid for ${minutes} minutes and replaces any code sent before. If you did not create an account, ignore this email.</p>`;
    return { to: row.recipient, subject: 'Your rst auth verification code', text, html };
  }
  const minutes = RECOVERY_TTL_SECONDS / 60;
  const link = resetLink(appUrl, secret);
  const text = [
    `Hello ${name},`,
    '',
    'Someone asked to reset the password of your rst auth account. To choose a new one, open:',
    link,
    '',
    `Or, from the CLI, use this recovery token: ${secret}`,
    '',
    `The link is valid for ${minutes} minutes and works once. ${RESET_EFFECT}`,
    '',
    'If you did not ask for this, ignore this email; your password stays as it is.',
  ].join('\n');
  const html =
    `<p>Hello ${escapeHtml(name)},</p><p>Someone asked to reset the password of your rst auth account.</p>` +
    `<p><a href="${escapeHtml(link)}">Choose a new password</a></p>` +
    `<p>Or, from the CLI, use this recovery token:<br><code>${escapeHtml(secret)}</code></p>` +
    `<p>The link is valid for ${minutes} minutes and works once. ${RESET_EFFECT}</p>` +
    '<p>If you did not ask for this, ignore this email; your password stays as it is.</p>';
  return { to: row.recipient, subject: 'Reset your rst auth password', text, html };
}
