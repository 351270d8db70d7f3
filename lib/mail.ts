// The emails rst auth sends, rendered from an outbox row at delivery time, so the outbox holds
// the secret (code or token) only until the message has gone out.
import type { OutboxRow } from '../db/outbox.ts';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

export function renderMail(row: OutboxRow, appUrl: string): MailMessage {
  const name = typeof row.payload.username === 'string' ? row.payload.username : 'there';
  const secret = row.secret ?? '';
  if (row.kind === 'verify_email') {
    const text = [
      `Hello ${name},`,
      '',
      `Your rst auth verification code is: ${secret}`,
      '',
      'It is valid for 10 minutes. If you did not create an account, ignore this email.',
    ].join('\n');
    const html = `<p>Hello ${escapeHtml(name)},</p><p>Your rst auth verification code is:</p><p style="font-size:24px;font-weight:bold;letter-spacing:4px">${escapeHtml(secret)}</p><p>It is valid for 10 minutes. If you did not create an account, ignore this email.</p>`;
    return { to: row.recipient, subject: `Your rst auth verification code: ${secret}`, text, html };
  }
  const link = `${appUrl}/reset-password?token=${encodeURIComponent(secret)}`;
  const text = [
    `Hello ${name},`,
    '',
    'Someone asked to reset the password of your rst auth account. To choose a new one, open:',
    link,
    '',
    `Or, from the CLI, use this recovery token: ${secret}`,
    '',
    'The link is valid for 30 minutes and works once. If you did not ask for this, ignore this email; your password stays as it is.',
  ].join('\n');
  const html = `<p>Hello ${escapeHtml(name)},</p><p>Someone asked to reset the password of your rst auth account.</p><p><a href="${escapeHtml(link)}">Choose a new password</a></p><p>Or, from the CLI, use this recovery token:<br><code>${escapeHtml(secret)}</code></p><p>The link is valid for 30 minutes and works once. If you did not ask for this, ignore this email; your password stays as it is.</p>`;
  return { to: row.recipient, subject: 'Reset your rst auth password', text, html };
}
