// The stored profile: the server URL and the session tokens of the last `rst login`, in
// $XDG_CONFIG_HOME/rst/profile.json (XDG Base Directory spec; ~/.config when unset or relative).
// It holds a bearer credential, so the folder is 0700 and the file 0600, like ~/.ssh; it never
// holds a password.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Profile {
  url?: string;
  /** The access token (a JWT). */
  token?: string;
  /** Renews `token` when it expires; replaced by each refresh. */
  refreshToken?: string;
}

export function profilePath(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  // The spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.config');
  return path.join(base, 'rst', 'profile.json');
}

/** The stored profile, or an empty one. A damaged file is reported and ignored, not fatal:
 * `rst login` must still be able to replace it. */
export function readProfile(file = profilePath()): Profile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    process.stderr.write(`warning: cannot read ${file} (${(err as NodeJS.ErrnoException).code}); ignoring it\n`);
    return {};
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    const { url, token, refresh_token } = parsed as Record<string, unknown>;
    warnIfExposed(file);
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
    return { url: str(url), token: str(token), refreshToken: str(refresh_token) };
  } catch {
    process.stderr.write(`warning: ${file} is not a valid profile; ignoring it (rst login rewrites it)\n`);
    return {};
  }
}

function warnIfExposed(file: string): void {
  const mode = fs.statSync(file).mode & 0o777;
  if (mode & 0o077)
    process.stderr.write(`warning: ${file} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${file}\n`);
}

/** Writes the profile atomically: a reader never sees half a file, and the token is never in a
 * file with wider permissions, not even for a moment (the temporary file is created 0600). */
export function writeProfile(profile: Profile, file = profilePath()): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode applies only to a folder it creates (and is masked by the umask).
  fs.chmodSync(dir, 0o700);
  const content = `${JSON.stringify({ url: profile.url, token: profile.token, refresh_token: profile.refreshToken }, null, 2)}\n`;
  const temp = path.join(dir, `.profile.${randomBytes(6).toString('hex')}.tmp`);
  try {
    fs.writeFileSync(temp, content, { mode: 0o600, flag: 'wx' });
    fs.renameSync(temp, file);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw err;
  }
}
