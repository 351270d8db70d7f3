import type { GetJwksData, GetJwksResponses } from '../generated/types.gen.ts';
import type { Operation } from '../http/operation.ts';

// Public keys only, so any cache may keep them; five minutes bounds how long a verifier may miss
// a key that was just added, which is why a new key is published before it signs (README).
export const getJwks: Operation<GetJwksData, GetJwksResponses> = async (_c, _ctx, { jwt }) => ({
  status: 200,
  headers: { 'Cache-Control': 'public, max-age=300' },
  body: { keys: jwt.jwks() },
});
