import type { ListApiKeysData, ListApiKeysResponses } from '../generated/types.gen.ts';
import { listActiveApiKeys } from '../db/apiKeys.ts';
import { requireJwtOwner } from '../http/security.ts';
import type { Operation } from '../http/operation.ts';
import { apiKeyView } from '../http/views.ts';

export const listApiKeys: Operation<ListApiKeysData, ListApiKeysResponses> = async (c, _ctx, { db }) => {
  const owner = requireJwtOwner(c);
  const keys = await listActiveApiKeys(db, owner.account.id);
  return {
    status: 200,
    body: {
      items: keys.map((k) => ({ ...apiKeyView(k), last_used_at: k.last_used_at?.toISOString() ?? null })),
    },
  };
};
