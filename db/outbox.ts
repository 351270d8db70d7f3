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

/**
 * Claims up to `limit` due messages for this worker. FOR UPDATE SKIP LOCKED lets several
 * instances poll one table without taking the same row, and the lease (next_attempt_at pushed
 * into the future) keeps a claimed row from being taken again while it is being sent; a worker
 * that dies mid-send leaves a row that becomes due again when the lease runs out.
 */
export async function claimDueMail(db: Db, limit: number, leaseSeconds: number): Promise<OutboxRow[]> {
  const { rows } = await db.raw(
    `update outbox set next_attempt_at = now() + make_interval(secs => ?), attempts = attempts + 1
     where id in (
       select id from outbox where sent_at is null and next_attempt_at <= now()
       order by id limit ? for update skip locked)
     returning *`,
    [leaseSeconds, limit],
  );
  return rows as OutboxRow[];
}

/** Sent: the secret is erased, the row stays as a record. */
export async function markMailSent(db: Db, id: number): Promise<void> {
  await db('outbox').where({ id }).update({ sent_at: db.fn.now(), secret: null, last_error: null });
}

export async function markMailFailed(db: Db, id: number, error: string, retryInSeconds: number): Promise<void> {
  await db('outbox')
    .where({ id })
    .update({ last_error: error.slice(0, 500), next_attempt_at: db.raw('now() + make_interval(secs => ?)', [retryInSeconds]) });
}

export async function countPendingMail(db: Db): Promise<number> {
  const row = await db('outbox').whereNull('sent_at').count({ n: '*' }).first();
  return Number(row?.n ?? 0);
}
