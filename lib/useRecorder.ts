// last_used_at within a minute without a write per request, for API keys and sessions alike: a
// use whose recorded time is older than 60 s (the lookup query says so) marks the row, and every
// `intervalMs` one UPDATE records all marked rows. A burst of first uses (a fleet of CLIs
// starting, a benchmark over 1,000 keys) is then a write every couple of seconds instead of one
// commit per request, off the response path.
import type { Db } from '../db/knex.ts';
import type { Logger } from './logger.ts';

export class UseRecorder {
  private due = new Set<string>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  private readonly db: Db;
  private readonly log: Logger;
  /** What is recorded, for the log line when a write fails. */
  private readonly what: string;
  private readonly touch: (db: Db, ids: string[]) => Promise<void>;

  constructor(db: Db, log: Logger, what: string, touch: (db: Db, ids: string[]) => Promise<void>, intervalMs = 2000) {
    this.db = db;
    this.log = log;
    this.what = what;
    this.touch = touch;
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  mark(id: string): void {
    this.due.add(id);
  }

  flush(): Promise<void> {
    if (this.due.size === 0) return this.flushing;
    const ids = [...this.due];
    this.due = new Set();
    this.flushing = this.flushing
      .then(() => this.touch(this.db, ids))
      .catch((err: unknown) => this.log.warn({ err, rows: ids.length }, `could not record ${this.what} use`));
    return this.flushing;
  }

  /** Writes what is marked, then stops; called before the database closes. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
