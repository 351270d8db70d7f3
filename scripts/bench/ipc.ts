// The parent's side of the measuring children (load.ts, kdf.ts): each is forked from its own file,
// receives one spec message and answers with typed messages.
import { type ChildProcess, fork } from 'node:child_process';

export function forkChild(file: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  return fork(file, [], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

export function awaitMessage<T>(proc: ChildProcess, type: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMessage = (m: { type: string; result?: unknown }) => {
      if (m.type !== type) return;
      proc.off('message', onMessage);
      proc.off('exit', onExit);
      resolve(m.result as T);
    };
    const onExit = (code: number | null) => reject(new Error(`${type}: child exited (${code}) before answering`));
    proc.on('message', onMessage);
    proc.once('exit', onExit);
  });
}

/** The spec a child was forked for: its parent's first message. */
export function receiveSpec<T>(): Promise<T> {
  return new Promise<T>((resolve) => process.once('message', (m) => resolve(m as T)));
}
