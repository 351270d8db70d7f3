import type { ChangePasswordData, ChangePasswordResponses } from '../generated/types.gen.ts';
import { withRetry } from '../db/retry.ts';
import { updatePasswordHash } from '../db/accounts.ts';
import { useUpRecoveryTokens } from '../db/recoveryTokens.ts';
import { endSessions } from '../db/sessions.ts';
import { checkPasswordPolicy } from '../lib/passwords.ts';
import { problem } from '../lib/problems.ts';
import { reauthenticate } from '../lib/reauth.ts';
import { requireJwtOwner } from '../http/security.ts';
import type { Operation } from '../http/operation.ts';

export const changePassword: Operation<ChangePasswordData, ChangePasswordResponses> = async (c, ctx, deps) => {
  const { config, db, hasher, log } = deps;
  const owner = requireJwtOwner(c, 'Changing the password needs a session; sign in and use the session token.');
  // The account view tells its owner this much already: no re-authentication is needed to say it.
  if (!owner.account.has_password)
    throw problem('password_required', {
      detail: 'This account has no password yet: set one through password recovery (forgot-password).',
    });
  const { current_password: current, new_password: next } = c.request.requestBody;
  const account = await reauthenticate(deps, owner.account, { password: current }, ctx.ip);
  const normalized = checkPasswordPolicy(next, {
    minLength: config.passwordMinLength,
    username: account.username,
    email: account.email,
  });
  const passwordHash = await hasher.hash(normalized);
  // Whoever else holds a session of the account (the reason to change a password, often) is out;
  // this session stays, and so do API keys (API.md: minted deliberately, revoked one by one).
  // A recovery link mailed before would set the password back: it stops working too.
  await withRetry(
    db,
    async (trx) => {
      await updatePasswordHash(trx, account.id, passwordHash);
      await useUpRecoveryTokens(trx, account.id);
      await endSessions(trx, account.id, { except: owner.sessionId });
    },
    log,
  );
  return { status: 204, body: undefined };
};
