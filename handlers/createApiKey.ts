import type { CreateApiKeyData, CreateApiKeyResponses } from '../generated/types.gen.ts';
import { insertApiKeyWithinLimit } from '../db/apiKeys.ts';
import { MAX_ACTIVE_API_KEYS, newApiKey } from '../lib/apiKeys.ts';
import { requireJwtOwner } from '../http/security.ts';
import { problem } from '../lib/problems.ts';
import type { Operation } from '../http/operation.ts';
import { apiKeyView } from '../http/views.ts';

// "Session first, key second": only a JWT session mints keys, and only when asked to.
export const createApiKey: Operation<CreateApiKeyData, CreateApiKeyResponses> = async (c, _ctx, { db }) => {
  const owner = requireJwtOwner(c);
  const key = newApiKey();
  const { name, scopes = [], expires_in_days: expiresInDays } = c.request.requestBody;
  const row = await insertApiKeyWithinLimit(
    db,
    { accountId: owner.account.id, name, prefix: key.prefix, hash: key.hash, scopes, expiresInDays },
    MAX_ACTIVE_API_KEYS,
  );
  if (row === 'limit_reached') {
    throw problem('api_key_limit_reached', {
      detail: `An account can hold at most ${MAX_ACTIVE_API_KEYS} active API keys; revoke one first.`,
    });
  }
  if (row === 'no_account')
    throw problem('unauthorized', {
      headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
    });
  return {
    status: 201,
    // The raw key exists only in this response: no cache may keep it.
    headers: { 'Cache-Control': 'no-store' },
    body: { ...apiKeyView(row), raw_key: key.raw },
  };
};
