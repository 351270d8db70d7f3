// Passwords reach the CLI from a terminal prompt that does not echo, or from stdin
// (`--password-stdin`, as `docker login` does) — never from argv, which other users can read
// in `ps` and which shells keep in their history.
import fs from 'node:fs';
import readline from 'node:readline/promises';
import { CliError, EXIT_INTERRUPTED, usageError } from './exit.ts';

/** Long enough for any password the API accepts (256 characters, up to 4 bytes each). */
const MAX_STDIN_BYTES = 4096;

export interface PasswordSource {
  passwordStdin?: boolean;
}

/** Reads a password. `confirm` asks twice on a terminal (for a new password). */
export async function readPassword(source: PasswordSource, prompt: string, confirm = false): Promise<string> {
  let password: string;
  if (source.passwordStdin) {
    password = await readStdin();
  } else if (process.stdin.isTTY) {
    password = await promptHidden(`${prompt}: `);
    if (confirm && (await promptHidden(`${prompt} (again): `)) !== password)
      throw usageError('the two passwords differ');
  } else {
    throw usageError('no terminal to ask for the password: pipe it in with --password-stdin');
  }
  if (password === '') throw usageError('the password is empty');
  return password;
}

/** Reads a secret that is not a password (a code, an ID token): from stdin when it is not a
 * terminal, else from a prompt that does not echo. */
export async function readSecret(prompt: string): Promise<string> {
  const value = (process.stdin.isTTY ? await promptHidden(`${prompt}: `) : await readStdin()).trim();
  if (value === '') throw usageError(`no ${prompt.toLowerCase()} given`);
  return value;
}

/** Reads a file's content, or stdin for `-`, e.g. an ID token saved by another tool. */
export async function readFileOrStdin(file: string, what: string): Promise<string> {
  let value: string;
  if (file === '-') value = await readStdin();
  else {
    try {
      value = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw usageError(`cannot read ${what} from ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  value = value.trim();
  if (value === '' || value.length > MAX_STDIN_BYTES) throw usageError(`${file}: not ${what}`);
  return value;
}

/** Two passwords on stdin, one a line (the current one, then the new one). */
export async function readPasswordPair(): Promise<[string, string]> {
  const lines = (await readStdin()).split(/\r?\n/);
  if (lines.length !== 2 || !lines[0] || !lines[1])
    throw usageError('--password-stdin: give two lines, the current password and then the new one');
  return [lines[0], lines[1]];
}

/** A visible one-line answer at the terminal (what the person types is meant to be seen). */
export async function promptLine(question: string): Promise<string> {
  if (!process.stdin.isTTY) throw usageError('no terminal to ask on');
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > MAX_STDIN_BYTES) throw usageError(`--password-stdin: more than ${MAX_STDIN_BYTES} bytes on stdin`);
    chunks.push(chunk as Buffer);
  }
  // One trailing newline is the `echo` or the file's, not part of the password.
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/** A terminal prompt in raw mode, so the typed characters are never echoed. */
function promptHidden(question: string): Promise<string> {
  const input = process.stdin;
  // Raw mode before the prompt: a key typed the moment the prompt shows must not be echoed.
  input.setRawMode(true);
  input.setEncoding('utf8');
  input.resume();
  process.stderr.write(question);
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (err?: Error) => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      // An escape sequence (arrow or function key) arrives as one chunk: it is not text.
      if (chunk.startsWith('\u001b')) return;
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003') return finish(new CliError(EXIT_INTERRUPTED, 'interrupted'));
        if (ch === '\u0004') return value === '' ? finish(usageError('no password given')) : finish();
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else if (ch === '\u0015') value = '';
        else if (ch >= ' ') value += ch;
      }
    };
    input.on('data', onData);
  });
}
