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

export function resetLink(appUrl: string, token: string): string {
  return `${appUrl}/reset-password?token=${encodeURIComponent(token)}`;
}

type Template = (row: MailRow, name: string, secret: string, appUrl: string) => Omit<MailMessage, 'to'>;

function verifyEmail(_row: MailRow, name: string, secret: string): Omit<MailMessage, 'to'> {
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
  return { subject: 'Your rst auth verification code', text, html };
}

function resetPassword(_row: MailRow, name: string, secret: string, appUrl: string): Omit<MailMessage, 'to'> {
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
    `The link is valid for ${minutes} minutes and works once. If you did not ask for this, ignore this email; your password stays as it is.`,
  ].join('\n');
  const html =
    `<p>Hello ${escapeHtml(name)},</p><p>Someone asked to reset the password of your rst auth account.</p>` +
    `<p><a href="${escapeHtml(link)}">Choose a new password</a></p>` +
    `<p>Or, from the CLI, use this recovery token:<br><code>${escapeHtml(secret)}</code></p>` +
    `<p>The link is valid for ${minutes} minutes and works once. If you did not ask for this, ignore this email; your password stays as it is.</p>`;
  return { subject: 'Reset your rst auth password', text, html };
}

/** To the new address of an email change: the code that proves it. */
function emailChangeCode(_row: MailRow, name: string, secret: string): Omit<MailMessage, 'to'> {
  const minutes = CODE_TTL_SECONDS / 60;
  const text = [
    `Hello ${name},`,
    '',
    `The rst auth account ${name} asked to make this address its email.`,
    `Your email change code is: ${secret}`,
    '',
    `It is valid for ${minutes} minutes and replaces any code sent before. Confirm it with: rst email verify CODE`,
    'If you did not ask for this, ignore this email: nothing changes without the code.',
  ].join('\n');
  const html =
    `<p>Hello ${escapeHtml(name)},</p><p>The rst auth account ${escapeHtml(name)} asked to make this address its email. Your email change code is:</p>` +
    `<p style="font-size:24px;font-weight:bold;letter-spacing:4px">${escapeHtml(secret)}</p>` +
    `<p>It is valid for ${minutes} minutes and replaces any code sent before. Confirm it with <code>rst email verify CODE</code>.</p>` +
    '<p>If you did not ask for this, ignore this email: nothing changes without the code.</p>';
  return { subject: 'Confirm your new rst auth email', text, html };
}

/** To the old address once an email change is done: the one warning a hijacked account's owner gets. */
function emailChanged(row: MailRow, name: string): Omit<MailMessage, 'to'> {
  const to = typeof row.payload.new_email === 'string' ? row.payload.new_email : 'another address';
  const text = [
    `Hello ${name},`,
    '',
    `The email of your rst auth account was changed from this address to ${to}.`,
    'Every other session of the account was signed out, and recovery links sent here no longer work.',
    '',
    'If you did not do this, someone else holds your account: contact the service operator at once.',
  ].join('\n');
  const html =
    `<p>Hello ${escapeHtml(name)},</p><p>The email of your rst auth account was changed from this address to <b>${escapeHtml(to)}</b>.</p>` +
    '<p>Every other session of the account was signed out, and recovery links sent here no longer work.</p>' +
    '<p>If you did not do this, someone else holds your account: contact the service operator at once.</p>';
  return { subject: 'Your rst auth email was changed', text, html };
}

/** To the address of a deleted account. */
function accountDeleted(_row: MailRow, name: string): Omit<MailMessage, 'to'> {
  const text = [
    `Hello ${name},`,
    '',
    'Your rst auth account has been deleted, as asked, with its sessions, API keys and everything else it held.',
    'The username and this address are free again; you can register anew at any time.',
    '',
    'If you did not do this, someone had your password: the account cannot be brought back, but nothing of it is left to misuse.',
  ].join('\n');
  const html =
    `<p>Hello ${escapeHtml(name)},</p><p>Your rst auth account has been deleted, as asked, with its sessions, API keys and everything else it held.</p>` +
    '<p>The username and this address are free again; you can register anew at any time.</p>' +
    '<p>If you did not do this, someone had your password: the account cannot be brought back, but nothing of it is left to misuse.</p>';
  return { subject: 'Your rst auth account is deleted', text, html };
}

const TEMPLATES: Record<MailRow['kind'], Template> = {
  verify_email: verifyEmail,
  reset_password: resetPassword,
  email_change_code: emailChangeCode,
  email_changed: emailChanged,
  account_deleted: accountDeleted,
};

export function renderMail(row: MailRow, appUrl: string): MailMessage {
  const name = typeof row.payload.username === 'string' ? row.payload.username : 'there';
  return { to: row.recipient, ...TEMPLATES[row.kind](row, name, row.secret ?? '', appUrl) };
}
