// How an operation handler is typed: its request from the generated `<Op>Data`, its replies from
// the generated `<Op>Responses`, so a contract change that breaks a handler fails the type-check;
// and which operations there are, from the generated SDK: one function per operationId.
import type { Context } from 'openapi-backend';
import type * as sdk from '../generated/sdk.gen.ts';
import type { Deps } from '../lib/deps.ts';
import type { RequestContext } from './state.ts';

/** Every operationId in openapi.yaml. */
export type OperationId = keyof typeof sdk;

type Statuses<R> = Extract<keyof R, number>;

/** One of the replies the contract allows: a documented status with its body type. */
export type Reply<R> = {
  [S in Statuses<R>]: { status: S; body: R[S] extends void ? undefined : R[S]; headers?: Record<string, string> };
}[Statuses<R>];

type Part<T> = [NonNullable<T>] extends [never] ? Record<string, never> : NonNullable<T>;

export type Operation<D extends { body?: unknown; path?: unknown }, R> = (
  c: Context<Part<D['body']>, Part<D['path']>>,
  ctx: RequestContext,
  deps: Deps,
) => Promise<Reply<R>>;
