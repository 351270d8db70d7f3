// The one way a test waits for something another process does (a mail, a log line, a row, a
// status): ask again every few milliseconds until the answer is there or the time is up. Polling
// rather than events keeps every waiter the same, whatever it watches.

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const EVERY_MS = 25;

/**
 * Resolves with the first truthy value `find` returns; rejects with `what` once `ms` have passed,
 * or at once when `find` throws (a server that exited will never log the line).
 */
export async function waitFor<T>(
  find: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  what: string,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = await find();
    if (found) return found;
    if (Date.now() >= deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(EVERY_MS);
  }
}
