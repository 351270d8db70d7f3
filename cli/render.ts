// Human-readable output. `--json` bypasses all of it and prints the API's own JSON.
import type { Account, ActiveSession, ApiKey } from '@rst-auth/sdk';

export const out = (text: string): void => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
/** Notes for the person at the terminal, kept off stdout so pipes carry only the result. */
export const note = (text: string): void => void process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
/** Server-sent text is shown, not interpreted: control characters in a key name must not be able
 * to move the cursor or rewrite the terminal's title. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
export const clean = (text: string) => text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '\ufffd');
export const printJson = (value: unknown): void => out(JSON.stringify(value, null, 2));

/** Aligned `label  value` lines. */
export function summary(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n');
}

/** A plain text table: a header row and columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

export function accountSummary(a: Account): string {
  let google = 'not linked';
  if (a.google_linked)
    google = a.can_unlink_google
      ? 'linked (can be unlinked: rst google unlink)'
      : 'linked (cannot be unlinked: the account has no password; set one with rst forgot-password)';
  return summary([
    ['username', a.username],
    ['email', `${a.email} (${a.email_verified ? 'verified' : 'not verified'})`],
    ['plan', `${a.plan} (source: ${a.plan_source})`],
    ['sign-in', a.available_sign_in_methods.join(', ') || 'none'],
    ['google', google],
    ['account id', a.id],
    ['created', a.created_at],
  ]);
}

export function keysTable(items: ApiKey[]): string {
  if (items.length === 0) return 'No API keys. Create one with: rst keys create NAME';
  return table(
    ['ID', 'NAME', 'PREFIX', 'CREATED', 'EXPIRES', 'SCOPES', 'LAST USED'],
    items.map((k) => [
      k.id,
      clean(k.name),
      k.prefix,
      k.created_at,
      k.expires_at ?? 'never',
      k.scopes.length > 0 ? clean(k.scopes.join(',')) : '-',
      k.last_used_at ?? 'never',
    ]),
  );
}

export function sessionsTable(items: ActiveSession[]): string {
  if (items.length === 0) return 'No active sessions.';
  return table(
    ['', 'ID', 'METHOD', 'CREATED', 'LAST USED', 'EXPIRES', 'IP', 'USER AGENT'],
    items.map((x) => [
      x.current ? '*' : '',
      x.id,
      x.method,
      x.created_at,
      x.last_used_at,
      x.expires_at,
      x.ip ?? '',
      clean(x.user_agent ?? ''),
    ]),
  );
}
