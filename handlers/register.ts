import type { RegisterData, RegisterResponses } from '../generated/types.gen.ts';
import { findAccountByEmail, findAccountByLogin, insertAccount } from '../db/accounts.ts';
import { withRetry } from '../db/retry.ts';
import { consume, limitKey } from '../lib/limits.ts';
import { checkPasswordPolicy } from '../lib/passwords.ts';
import { problem } from '../lib/problems.ts';
import { issueVerificationCode } from '../lib/verification.ts';
import type { Operation } from '../http/operation.ts';

const taken = (field: 'username' | 'email' | 'google_sub') =>
  field === 'username'
    ? problem('username_taken')
    : problem('email_taken', {
        detail: 'Sign in, or recover the password.',
      });

export const register: Operation<RegisterData, RegisterResponses> = async (
  c,
  ctx,
  { config, db, hasher, codeKey, log, wakeOutboxWorker },
) => {
  const { username, password } = c.request.requestBody;
  const email = c.request.requestBody.email.toLowerCase();
  await consume(db, [{ key: limitKey('register-ip', ctx.ip), rule: config.limits.registerIp }]);
  const normalized = checkPasswordPolicy(password, { minLength: config.passwordMinLength, username, email });

  // A cheap look first spares the scrypt work for the common case; the unique indexes below
  // still decide any race between two requests.
  if (await findAccountByLogin(db, username)) throw taken('username');
  if (await findAccountByEmail(db, email)) throw taken('email');
  const passwordHash = await hasher.hash(normalized);

  const result = await withRetry(
    db,
    async (trx) => {
      const inserted = await insertAccount(trx, { username, email, password_hash: passwordHash });
      if ('conflict' in inserted) return inserted;
      await issueVerificationCode(trx, codeKey, inserted.account);
      return inserted;
    },
    log,
  );
  if ('conflict' in result) throw taken(result.conflict);
  wakeOutboxWorker();

  const { account } = result;
  return {
    status: 201,
    body: {
      id: account.id,
      username: account.username,
      email: account.email,
      email_verified: account.email_verified,
      created_at: account.created_at.toISOString(),
    },
  };
};
