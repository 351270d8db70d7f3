// What the bench must undo however it ends (servers to stop, databases to drop), undone in the
// reverse order it was set up: servers stop before the databases they use are dropped.
const cleanups: (() => Promise<void> | void)[] = [];

export function onCleanup(undo: () => Promise<void> | void): void {
  cleanups.push(undo);
}

export async function cleanup(): Promise<void> {
  while (cleanups.length) {
    try {
      await cleanups.pop()!();
    } catch (err) {
      console.error('cleanup:', err instanceof Error ? err.message : err);
    }
  }
}
