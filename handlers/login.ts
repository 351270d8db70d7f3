import type { LoginData, LoginResponses } from '../generated/types.gen.ts';
import { findAccountByLogin, updatePasswordHash } from '../db/accounts.ts';
import { DatabaseUnavailable } from '../db/errors.ts';
import { consume, limitKey, refund } from '../lib/limits.ts';
import { normalizePassword } from '../lib/passwords.ts';
import { problem } from '../lib/problems.ts';
import { startSession } from '../lib/sessions.ts';
import type { Operation } from '../http/operation.ts';

export const login: Operation<LoginData, LoginResponses> = async (
  c,
  ctx,
  { config, db, hasher, jwt, codeKey, log },
) => {
  const { username: identifier, password } = c.request.requestBody;
  const keys = [limitKey('login-id', identifier), limitKey('login-ip', ctx.ip)];
  // Every attempt is counted before the password is checked, so concurrent guesses cannot all
  // slip under the limit; a successful sign-in gives its attempt back.
  await consume(db, [
    { key: keys[0]!, rule: config.limits.loginIdentifier },
    { key: keys[1]!, rule: config.limits.loginIp },
  ]);

  let account: Awaited<ReturnType<typeof findAccountByLogin>>;
  let checked: { ok: boolean; needsRehash: boolean };
  try {
    account = await findAccountByLogin(db, identifier);
    // Unknown and password-less accounts are checked against a dummy hash of the same cost, so
    // neither the answer nor its timing tells whether the account exists.
    checked = await hasher.verify(account?.password_hash, password);
  } catch (err) {
    // Shed (server_busy) or failed on our side: the attempt was never judged, so it does not
    // count: a login storm must not lock its victims out. Not tried when the connection itself
    // failed (it would wait for the same timeout again); best effort otherwise.
    if (!(err instanceof DatabaseUnavailable)) await refund(db, keys).catch(() => {});
    throw err;
  }
  const { ok, needsRehash } = checked;
  if (!account || !ok) {
    throw problem('invalid_credentials', {
      headers: { 'WWW-Authenticate': 'Bearer' },
    });
  }
  await refund(db, keys);
  if (!account.email_verified) {
    throw problem('email_not_verified', {
      detail: 'Verify your email with the code we sent, or ask for a new one.',
    });
  }
  if (needsRehash) {
    // Cost parameters changed since this hash was made: upgrade it while we hold the password.
    try {
      await updatePasswordHash(db, account.id, await hasher.hash(normalizePassword(password)));
    } catch (err) {
      log.warn({ err, accountId: account.id }, 'password re-hash failed; kept the old hash');
    }
  }

  const tokens = await startSession(db, jwt, codeKey, {
    accountId: account.id,
    method: 'password',
    userAgent: ctx.get('user-agent'),
    ip: ctx.ip,
  });
  return { status: 200, headers: { 'Cache-Control': 'no-store' }, body: tokens };
};
