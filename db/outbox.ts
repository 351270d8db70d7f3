// The email outbox: a message is written in the same transaction as the code or token it
// carries, so it is sent if and only if that state committed.
import type { Db } from './knex.ts';

export type MailKind = 'verify_email' | 'reset_password';

export interface OutboxRow {
  id: number;
  kind: MailKind;
  recipient: string;
  payload: Record<string, unknown>;
  secret: string | null;
  attempts: number;
  next_attempt_at: Date;
  sent_at: Date | null;
  last_error: string | null;
  created_at: Date;
}

/** `secret` (a code or token) is kept only until the message is sent, then erased. */
export async function enqueueMail(db: Db, mail: { kind: MailKind; recipient: string; payload?: Record<string, unknown>; secret: string }): Promise<void> {
  await db('outbox').insert({ kind: mail.kind, recipient: mail.recipient, payload: JSON.stringify(mail.payload ?? {}), secret: mail.secret });
}
