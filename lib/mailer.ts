// Email delivery worker. Placeholder until email delivery lands: mail stays in the outbox.
import type { Deps } from './deps.ts';

export interface Mailer {
  wake(): void;
  stop(): Promise<void>;
}

export function startMailer(_deps: Deps): Mailer {
  return { wake: () => {}, stop: async () => {} };
}
