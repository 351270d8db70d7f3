// The email outbox. A message is written in the same transaction as the code or token it
// carries, so it is sent if and only if that state committed.
//
// The table also carries jobs: resend-verification and forgot-password write one job row and
// nothing else, whether or not an account has the email, so the request does the same work
// either way (no timing oracle); the delivery worker looks the account up later, issues the
// code or token with its message in one transaction, or drops the job.
import type { Db } from './knex.ts';

/** Messages: rendered and sent by the worker. */
export type MailKind = 'verify_email' | 'reset_password' | 'email_change_code' | 'email_changed' | 'account_deleted';
/** Messages whose row forgets its recipient and payload once sent: the goodbye to a deleted
 * account is the one trace of it, and only until it has gone out. */
const FORGOTTEN_WHEN_SENT: MailKind[] = ['account_deleted'];
/** Jobs: turned into a message (or dropped) by the worker, never sent themselves. */
export type JobKind = 'verification_request' | 'recovery_request';

export const isJob = (kind: MailKind | JobKind): kind is JobKind =>
  kind === 'verification_request' || kind === 'recovery_request';

export interface OutboxRow {
  id: number;
  kind: MailKind | JobKind;
  recipient: string;
  payload: Record<string, unknown>;
  secret: string | null;
  attempts: number;
  next_attempt_at: Date;
  sent_at: Date | null;
  last_error: string | null;
  created_at: Date;
}

export type MailRow = OutboxRow & { kind: MailKind };

/** `secret` (a code or token) is kept only until the message is sent, then erased. */
export async function enqueueMail(
  db: Db,
  mail: { kind: MailKind; recipient: string; payload?: Record<string, unknown>; secret?: string },
): Promise<void> {
  await db('outbox').insert({
    kind: mail.kind,
    recipient: mail.recipient,
    payload: JSON.stringify(mail.payload ?? {}),
    secret: mail.secret ?? null,
  });
}

/**
 * Deletes every row, queued or sent, that belongs to an account: addressed to its email, or
 * naming it in the payload (by id, or by the username that mails before an email change carry).
 */
export async function deleteMailOf(db: Db, account: { id: string; email: string; username: string }): Promise<void> {
  await db('outbox')
    .where({ recipient: account.email })
    .orWhereRaw(`payload->>'account_id' = ?`, [account.id])
    .orWhereRaw(`payload->>'username' = ?`, [account.username])
    .delete();
}

/** One row, the same statement whether or not an account has this (normalised) email. */
export async function enqueueJob(db: Db, kind: JobKind, email: string): Promise<void> {
  await db('outbox').insert({ kind, recipient: email });
}

/**
 * Claims the oldest due row for this worker, or nothing. FOR UPDATE SKIP LOCKED lets several
 * instances poll one table without taking the same row, and the lease (next_attempt_at pushed
 * into the future) keeps a claimed row from being taken again while it is being sent; a worker
 * that dies mid-send leaves a row that becomes due again when the lease runs out. One row per
 * claim: a batch would hold later rows under a lease that a slow SMTP server could outlast.
 * `jobsOnly` skips messages (while the SMTP server is failing, jobs still get done).
 */
export async function claimDueRow(db: Db, leaseSeconds: number, jobsOnly = false): Promise<OutboxRow | undefined> {
  const { rows } = await db.raw(
    `update outbox set next_attempt_at = now() + make_interval(secs => ?), attempts = attempts + 1
     where id = (
       select id from outbox where sent_at is null and next_attempt_at <= now()
         and (not ? or kind in ('verification_request', 'recovery_request'))
       order by next_attempt_at, id limit 1 for update skip locked)
     returning *`,
    [leaseSeconds, jobsOnly],
  );
  return rows[0] as OutboxRow | undefined;
}

/** Sent: the secret is erased, the row stays as a record. */
export async function markMailSent(db: Db, id: number): Promise<void> {
  const forget = db.raw(`kind = any(?)`, [FORGOTTEN_WHEN_SENT]);
  await db('outbox')
    .where({ id })
    .update({
      sent_at: db.fn.now(),
      secret: null,
      last_error: null,
      recipient: db.raw(`case when ? then '' else recipient end`, [forget]),
      payload: db.raw(`case when ? then '{}'::jsonb else payload end`, [forget]),
    });
}

export async function markMailFailed(db: Db, id: number, error: string, retryInSeconds: number): Promise<void> {
  await db('outbox')
    .where({ id })
    .whereNull('sent_at')
    .update({
      last_error: error.slice(0, 500),
      next_attempt_at: db.raw('now() + make_interval(secs => ?)', [retryInSeconds]),
    });
}

/**
 * Takes a job for good, inside the transaction that acts on it: true for exactly one taker even
 * if a lease ran out and a second instance claimed the same job (the second DELETE waits on the
 * first's row lock, then finds nothing). A job leaves no row behind: the table keeps no record
 * of which addresses someone typed into forgot-password.
 */
export async function takeJob(trx: Db, id: number): Promise<boolean> {
  // RETURNING, not delete()'s count: knex-pglite answers delete() with a raw result object.
  const deleted = await trx('outbox').where({ id }).whereNull('sent_at').delete().returning('id');
  return deleted.length === 1;
}

export interface OutboxBacklog {
  /** Rows not yet sent (messages and jobs). */
  pending: number;
  /** Of those, the ones whose last attempt failed. */
  retrying: number;
  /** Seconds since the oldest of them was queued; 0 when there is none. */
  oldest: number;
}

export async function readOutboxBacklog(db: Db): Promise<OutboxBacklog> {
  const row = await db('outbox')
    .whereNull('sent_at')
    .first(
      db.raw('count(*) as pending'),
      db.raw('count(last_error) as retrying'),
      db.raw('coalesce(extract(epoch from now() - min(created_at)), 0) as oldest'),
    );
  return {
    pending: Number(row?.pending ?? 0),
    retrying: Number(row?.retrying ?? 0),
    oldest: Number(row?.oldest ?? 0),
  };
}
