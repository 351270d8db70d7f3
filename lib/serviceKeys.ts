// rst_svc_ service keys: how a product's backend identifies itself to introspection.
//
//   rst_svc_ + 36 random base62 characters + 6 base62 characters of CRC32 (IEEE) of those 36
//
// The API keys' format (lib/apiKeys.ts) under a prefix of their own, so a scanner or a log line
// tells them apart, and kept in a table of their own (service_keys): a service key is never a
// user credential, nor a user credential a service key. Only SHA-256 of the whole key is stored.
import { isWellFormedKey, mintKey, type NewApiKey, SERVICE_KEY_PREFIX } from './apiKeys.ts';

export const newServiceKey = (): NewApiKey => mintKey(SERVICE_KEY_PREFIX);

export const isWellFormedServiceKey = (raw: string): boolean => isWellFormedKey(SERVICE_KEY_PREFIX, raw);
