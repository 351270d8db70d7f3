// What the layers of one request tell each other, declared once: Koa<RequestState> and
// RequestContext type every ctx.state read and write.
import type Koa from 'koa';
import type { Principal } from '../lib/credentials.ts';

/** How a presented credential ended when no security scheme accepted the request. */
export type CredentialOutcome =
  /** Malformed, unknown, expired or revoked: 401 invalid_token, counted against the client IP. */
  | { outcome: 'refused' }
  /** Checking it failed (the database is down): `cause` is re-thrown, and edge() answers 503. */
  | { outcome: 'failed'; cause: unknown };

export interface RequestState {
  /** Set by edge() before any other layer runs. */
  requestId: string;
  /** Set once openapi-backend routed the request; absent for paths outside the contract. */
  operationId?: string;
  /** Set by a security handler that met a credential it could not accept; absent when none was sent. */
  credential?: CredentialOutcome;
  /** The owner check of a credential, kept for the request: a client that sends one token both as
   * Bearer and as X-API-Key (the SDK does, for an operation that takes either) is checked once. */
  checked?: { credential: string; principal: Promise<Principal> };
}

export type RequestContext = Koa.ParameterizedContext<RequestState>;
export type Middleware = Koa.Middleware<RequestState>;
