// The rst CLI as a user or a script runs it: a child process from source, with its environment
// given in full (HOME, XDG_CONFIG_HOME, RST_URL …), fed stdin through a pipe or typed at on a
// pseudo-terminal.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './server.ts';

// From source: the rst-source condition resolves @rst-auth/sdk to sdk/index.ts rather than its build.
export const RST = ['--conditions=rst-source', path.join(ROOT, 'cli', 'rst.ts')];

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs rst with `input` written to stdin, which is then closed (a pipe, never a terminal). */
export const runCli = (args: string[], env: Record<string, string>, input = ''): Promise<CliRun> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...RST, ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });

/** Runs rst on a pseudo-terminal (util-linux `script`), typing `keys` once `prompt` shows. */
export const onTerminal = (
  args: string[],
  env: Record<string, string>,
  steps: [prompt: string, keys: string][],
): Promise<{ code: number | null; screen: string }> =>
  new Promise((resolve, reject) => {
    const command = [process.execPath, ...RST, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: ROOT, env: { ...env, TERM: 'dumb' } });
    let screen = '';
    let step = 0;
    let seen = 0;
    child.stdout.on('data', (d: Buffer) => {
      screen += d.toString('utf8');
      // Typing only after the prompt: keys sent earlier would meet a terminal that still echoes.
      while (step < steps.length) {
        const [prompt, keys] = steps[step]!;
        const at = screen.indexOf(prompt, seen);
        if (at < 0) break;
        seen = at + prompt.length;
        child.stdin.write(keys);
        step++;
      }
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, screen }));
  });
