// Exit codes scripts can rely on: 0 ok, 1 the server refused (or could not be reached),
// 2 the command line itself was wrong. Every failure is one of these, printed as one
// `error: …` line on stderr; nothing else may end the process with a stack trace.
export const EXIT_OK = 0;
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;
/** The shell's convention for a process ended by Ctrl-C (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;

export class CliError extends Error {
  readonly exitCode: number;
  /** Further lines printed under the `error:` line. */
  readonly details: string[];
  constructor(exitCode: number, message: string, details: string[] = []) {
    super(message);
    this.exitCode = exitCode;
    this.details = details;
  }
}

export const usageError = (message: string, ...details: string[]) => new CliError(EXIT_USAGE, message, details);
export const refusal = (message: string, ...details: string[]) => new CliError(EXIT_REFUSED, message, details);
