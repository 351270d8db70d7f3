import type { ResetPasswordData, ResetPasswordResponses } from '../generated/types.gen.ts';
import { findLiveRecoveryToken, redeemRecoveryToken } from '../db/recoveryTokens.ts';
import { withRetry } from '../db/retry.ts';
import { consume, limitKey } from '../lib/limits.ts';
import { checkPasswordPolicy } from '../lib/passwords.ts';
import { problem } from '../lib/problems.ts';
import { hashRecoveryToken } from '../lib/recovery.ts';
import type { Operation } from '../http/operation.ts';

// Unknown, expired and used tokens all get this one answer.
const invalidToken = () =>
  problem('invalid_token', {
    detail: 'Ask for a new recovery email; a link works once, for 30 minutes.',
  });

export const resetPassword: Operation<ResetPasswordData, ResetPasswordResponses> = async (
  c,
  ctx,
  { config, db, hasher, codeKey, log },
) => {
  const { token, new_password: newPassword } = c.request.requestBody;
  await consume(db, [{ key: limitKey('reset-ip', ctx.ip), rule: config.limits.resetIp }]);
  const tokenHash = hashRecoveryToken(codeKey, token);

  // Read without using the token up: the policy needs the account's username and email, and a
  // refused new_password must leave the token usable for a second try.
  const holder = await findLiveRecoveryToken(db, tokenHash);
  if (!holder) throw invalidToken();
  const normalized = checkPasswordPolicy(newPassword, {
    minLength: config.passwordMinLength,
    username: holder.username,
    email: holder.email,
  });
  // scrypt runs before the transaction, so no row lock or (on PGlite) the one connection is held
  // for its duration; the redemption below decides any race for the token.
  const passwordHash = await hasher.hash(normalized);

  const accountId = await withRetry(db, (trx) => redeemRecoveryToken(trx, tokenHash, passwordHash), log);
  if (!accountId) throw invalidToken();
  return { status: 204, body: undefined };
};
