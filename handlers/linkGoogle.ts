import type { LinkGoogleData, LinkGoogleResponses } from '../generated/types.gen.ts';
import { findAccountById, linkGoogleSub, toOwnerRow } from '../db/accounts.ts';
import { checkGoogleCredential } from '../lib/google.ts';
import { consume, limitKey } from '../lib/limits.ts';
import { accountGone, googleNotConfigured, invalidGoogleCredential, problem } from '../lib/problems.ts';
import { reauthenticate } from '../lib/reauth.ts';
import { requireJwtOwner } from '../http/security.ts';
import type { Operation } from '../http/operation.ts';
import { accountView } from '../http/views.ts';

const alreadyLinked = () =>
  problem('google_already_linked', { detail: 'Unlink the current Google account first (POST /v1/me/google/unlink).' });

// Google is linked by its subject, never by email: a signed-in owner who proves the password may
// link any Google account (the emails need not match), once, and a Google account to one rst
// account only.
export const linkGoogle: Operation<LinkGoogleData, LinkGoogleResponses> = async (c, ctx, deps) => {
  const { config, db, google, log } = deps;
  const owner = requireJwtOwner(c, 'Linking Google needs a session; sign in and use the session token.');
  // What the account view already tells its owner needs no re-authentication to say.
  if (owner.account.google_linked) throw alreadyLinked();
  if (!google) throw googleNotConfigured();
  const { credential, nonce, password } = c.request.requestBody;
  await consume(db, [{ key: limitKey('google-ip', ctx.ip), rule: config.limits.googleIp }]);
  const account = await reauthenticate(deps, owner.account, { password }, ctx.ip);

  const verdict = await checkGoogleCredential(google, log, credential, nonce);
  if ('refused' in verdict) {
    log.info({ reason: verdict.refused }, 'Google credential refused');
    throw invalidGoogleCredential();
  }
  const linked = await linkGoogleSub(db, account.id, verdict.identity.sub);
  if (linked === 'in_use')
    throw problem('google_account_in_use', {
      detail: 'That Google account is linked to another rst account; unlink it there first.',
    });
  if (linked) return { status: 200, body: accountView(toOwnerRow(linked)) };
  // The conditional UPDATE matched nothing: the account got a link meanwhile, or is gone.
  if (await findAccountById(db, account.id)) throw alreadyLinked();
  throw accountGone();
};
