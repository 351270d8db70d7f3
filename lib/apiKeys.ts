// rst_ API keys. Placeholder until API keys land: no key authenticates.
import type { AccountRow } from '../db/accounts.ts';
import type { Deps } from './deps.ts';

export const looksLikeApiKey = (credential: string): boolean => credential.startsWith('rst_');

export async function authenticateApiKey(_deps: Deps, _raw: string): Promise<{ account: AccountRow; keyId: string } | null> {
  return null;
}
