// The SDK for consumers: `import { login, createApiKey, createClient } from 'rst-auth/sdk'`.
// Every operation and type comes from generated/ (openapi.yaml → @hey-api/openapi-ts); this file
// adds only a client whose base URL and credential are set once.
import { createClient as createGeneratedClient, type Client, type Config } from './generated/client/index.ts';

export * from './generated/index.ts';
export type { Client } from './generated/client/index.ts';

/** A JWT (from login or Google sign-in) or an `rst_` API key, or a function returning one (for
 * a token that is refreshed or read from storage at call time). */
export type Credential = string | (() => string | undefined | Promise<string | undefined>);

export interface RstClientOptions {
  /** Where the service is, e.g. `https://auth.example.com` (no trailing `/v1`). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …` on operations that take auth; the service accepts a JWT
   * or an `rst_` API key there. Omit it for the unauthenticated operations. */
  auth?: Credential;
  /** A custom fetch (tests, proxies, instrumentation). */
  fetch?: Config['fetch'];
}

export function createClient({ baseUrl, auth, fetch }: RstClientOptions): Client {
  return createGeneratedClient({
    baseUrl,
    ...(fetch ? { fetch } : {}),
    // The operations list two schemes (bearer, X-API-Key); answering only for bearer sends the
    // credential once, in the header every endpoint accepts it in.
    ...(auth === undefined
      ? {}
      : { auth: (scheme) => (scheme.scheme === 'bearer' ? (typeof auth === 'function' ? auth() : auth) : undefined) }),
  });
}
