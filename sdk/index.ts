// @rst-auth/sdk: the TypeScript client of rst auth. Every operation and type comes from generated/
// (openapi.yaml → @hey-api/openapi-ts); this file adds what a consumer wants on top of them: one
// client with the base URL and the credential set once, whose methods return the data and throw
// an RstProblem for every refusal. It uses nothing but fetch, so it runs on Node ≥ 20, Bun, Deno
// and in browsers, and it has no runtime dependencies.
import {
  type Client,
  type Config,
  createClient as createGeneratedClient,
  type RequestOptions,
} from '../generated/client/index.ts';
import * as operations from '../generated/sdk.gen.ts';
import type * as T from '../generated/types.gen.ts';

export * from '../generated/index.ts';
export type { Client } from '../generated/client/index.ts';

/** Every `code` the service can answer with, from the contract's Problem schema: a `switch` over
 * `err.code` is checked by the compiler, and a code that does not exist does not compile. */
export type ProblemCode = T.Problem['code'];

/** A JWT (from login or Google sign-in) or an `rst_` API key, or a function returning one (for a
 * token that is refreshed or read from storage at call time). */
export type Credential = string | (() => string | undefined | Promise<string | undefined>);

/** How rst auth is reached. Give a `token` (a JWT session) or an `apiKey` (`rst_…`), or neither for
 * the public operations (register, login, verifyEmail, …); a product backend gives its
 * `serviceKey` (`rst_svc_…`) for `introspect`. Each travels as `Authorization: Bearer`. */
export type RstClientOptions = {
  /** Where the service is, e.g. `https://auth.example.com` (no trailing `/v1`). */
  baseUrl: string;
  /** A custom fetch (tests, proxies, instrumentation). */
  fetch?: typeof fetch;
  /** Sent with every request, e.g. a `User-Agent`. */
  headers?: Record<string, string>;
  /** Cancels every request of this client, e.g. `AbortSignal.timeout(30_000)`. */
  signal?: AbortSignal;
  /** How a redirect is answered (fetch's own option; default `follow`). An auth API never redirects,
   * so `error` keeps a bearer token from being carried elsewhere. */
  redirect?: RequestInit['redirect'];
} & (
  | { token?: Credential; apiKey?: never; serviceKey?: never; session?: never }
  | { apiKey?: Credential; token?: never; serviceKey?: never; session?: never }
  | { serviceKey?: Credential; token?: never; apiKey?: never; session?: never }
  | { session: SessionOptions; token?: never; apiKey?: never; serviceKey?: never }
);

/** The tokens of a sign-in (`login`, `googleSignIn`, `refreshSession` answer them). */
export type SessionTokens = Pick<T.Session, 'access_token' | 'refresh_token'>;

/** Opt-in refreshing: the client sends `access_token`, and when the service refuses it (401 with
 * `WWW-Authenticate: Bearer error="invalid_token"`, e.g. once it has expired) it spends
 * `refresh_token` once for new tokens and retries the request once. Concurrent calls that meet the
 * refusal share one refresh: the service ends a session whose spent refresh token is presented
 * again, so two refreshes with one token would sign the client out. */
export interface SessionOptions extends SessionTokens {
  /** Called with every new pair, before the retried request goes out: store them (the refresh
   * token just spent is dead). */
  onRefresh?: (tokens: T.Session) => void | Promise<void>;
  /** Called once the refresh token is refused too (the session ended): sign in again. */
  onSessionEnded?: () => void | Promise<void>;
}

/** A refusal from rst auth: the RFC 9457 problem document it answered with, plus what the response
 * headers add. Thrown by every RstClient method for a non-2xx answer. */
export class RstProblem extends Error {
  override readonly name = 'RstProblem';
  /** The HTTP status, e.g. 409. */
  readonly status: number;
  /** The stable machine-readable code, e.g. `email_taken`. */
  readonly code: ProblemCode;
  readonly title: string;
  /** `urn:rst-auth:problem:<code>`. */
  readonly type: string;
  readonly detail: string | undefined;
  /** Which fields were wrong, for `validation_failed`. */
  readonly errors: { path: string; message: string }[] | undefined;
  /** Seconds to wait before trying again (the Retry-After header of a 429 or 503). */
  readonly retryAfter: number | undefined;
  /** The X-Request-Id of the answer: quote it when reporting a server error. */
  readonly requestId: string | undefined;
  /** The problem document as sent. */
  readonly problem: T.Problem;
  readonly response: Response;

  constructor(problem: T.Problem, response: Response) {
    super(problem.detail && problem.detail !== problem.title ? `${problem.title}: ${problem.detail}` : problem.title);
    this.problem = problem;
    this.response = response;
    this.status = problem.status;
    this.code = problem.code;
    this.title = problem.title;
    this.type = problem.type;
    this.detail = problem.detail;
    this.errors = problem.errors;
    this.requestId = response.headers.get('x-request-id') ?? undefined;
    // RFC 9110 §10.2.3 allows an HTTP date too; the service sends seconds, and a date is converted.
    const retryAfter = response.headers.get('retry-after');
    if (retryAfter === null) this.retryAfter = undefined;
    else if (/^\d+$/.test(retryAfter)) this.retryAfter = Number(retryAfter);
    else {
      const at = Date.parse(retryAfter);
      this.retryAfter = Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
    }
  }
}

/** Whether a body is a problem document (and not, say, a proxy's HTML error page). */
export function isProblem(body: unknown): body is T.Problem {
  if (!body || typeof body !== 'object') return false;
  const p = body as Record<string, unknown>;
  return typeof p.title === 'string' && typeof p.code === 'string' && typeof p.status === 'number';
}

// Each operation's request shape and its success body, named from generated/. The mapped type
// below indexes this by every function in generated/sdk.gen.ts, so an operation added to the
// contract fails tsc here until it is listed.
interface OperationTypes {
  register: [T.RegisterData, T.RegisterResponse];
  login: [T.LoginData, T.LoginResponse];
  verifyEmail: [T.VerifyEmailData, T.VerifyEmailResponse];
  resendVerification: [T.ResendVerificationData, T.ResendVerificationResponse];
  googleSignIn: [T.GoogleSignInData, T.GoogleSignInResponse];
  forgotPassword: [T.ForgotPasswordData, T.ForgotPasswordResponse];
  resetPassword: [T.ResetPasswordData, T.ResetPasswordResponse];
  listApiKeys: [T.ListApiKeysData, T.ListApiKeysResponse];
  createApiKey: [T.CreateApiKeyData, T.CreateApiKeyResponse];
  revokeApiKey: [T.RevokeApiKeyData, T.RevokeApiKeyResponse];
  getAccount: [T.GetAccountData, T.GetAccountResponse];
  unlinkGoogle: [T.UnlinkGoogleData, T.UnlinkGoogleResponse];
  changePassword: [T.ChangePasswordData, T.ChangePasswordResponse];
  changeEmail: [T.ChangeEmailData, T.ChangeEmailResponse];
  verifyEmailChange: [T.VerifyEmailChangeData, T.VerifyEmailChangeResponse];
  linkGoogle: [T.LinkGoogleData, T.LinkGoogleResponse];
  deleteAccount: [T.DeleteAccountData, T.DeleteAccountResponse];
  refreshSession: [T.RefreshSessionData, T.RefreshSessionResponse];
  logout: [T.LogoutData, T.LogoutResponse];
  listSessions: [T.ListSessionsData, T.ListSessionsResponse];
  revokeSession: [T.RevokeSessionData, T.RevokeSessionResponse];
  introspect: [T.IntrospectData, T.IntrospectResponse];
  getJwks: [T.GetJwksData, T.GetJwksResponse];
  healthz: [T.HealthzData, T.HealthzResponse];
  readyz: [T.ReadyzData, T.ReadyzResponse];
}
type OperationName = keyof typeof operations;

/** What one call takes: the operation's `body`, `path` and `query` as the contract defines them,
 * and optionally per-call `headers` and `signal`. */
export type CallOptions<D> = Omit<D, 'url'> & Pick<RequestOptions, 'headers' | 'signal'>;
type Method<D, R> =
  Partial<Omit<D, 'url'>> extends Omit<D, 'url'>
    ? (options?: CallOptions<D>) => Promise<R>
    : (options: CallOptions<D>) => Promise<R>;

/** One method per operation, resolving to the success body and throwing RstProblem otherwise, plus
 * the underlying generated `client` for calling the generated functions directly. */
export type RstClient = {
  [K in OperationName]: Method<OperationTypes[K][0], OperationTypes[K][1]>;
} & { readonly client: Client };

export function createRstClient(options: RstClientOptions): RstClient {
  const { baseUrl, fetch, headers, signal, redirect } = options;
  const session = options.session && new RefreshingSession(baseUrl, options.session, fetch ?? globalThis.fetch);
  const credential = session ? () => session.accessToken : (options.token ?? options.apiKey ?? options.serviceKey);
  const config: Config = { baseUrl };
  if (session) config.fetch = session.fetch;
  else if (fetch) config.fetch = fetch;
  if (headers) config.headers = headers;
  if (signal) config.signal = signal;
  if (redirect) config.redirect = redirect;
  // The operations list two schemes (bearer, X-API-Key); answering only for bearer sends the
  // credential once, in the header every endpoint accepts JWTs and rst_ keys in (RFC 6750).
  if (credential !== undefined)
    config.auth = (scheme) =>
      scheme.scheme === 'bearer' ? (typeof credential === 'function' ? credential() : credential) : undefined;
  const client = createGeneratedClient(config);

  const rst: Record<string, unknown> = { client };
  for (const [name, operation] of Object.entries(operations)) {
    rst[name] = async (callOptions: object = {}) => {
      const { data, error, response } = await (operation as (o: object) => Promise<Result>)({ ...callOptions, client });
      if (error === undefined) return data;
      // No answer (network, DNS, abort), or a 2xx whose body could not be read: rethrown as it is.
      if (!response || response.ok) throw error;
      if (isProblem(error)) throw new RstProblem(error, response);
      throw new Error(`rst auth answered HTTP ${response.status} ${response.statusText} without a problem document`, {
        cause: error,
      });
    };
  }
  return rst as RstClient;
}

interface Result {
  data?: unknown;
  error?: unknown;
  response?: Response;
}

/** RFC 6750: the credential sent was refused (as opposed to none being sent). */
const refusedToken = (res: Response) =>
  res.status === 401 && /error="invalid_token"/.test(res.headers.get('www-authenticate') ?? '');

class RefreshingSession {
  private tokens: SessionTokens;
  private refreshing: Promise<boolean> | undefined;
  private ended = false;
  private readonly refreshUrl: string;
  private readonly options: SessionOptions;
  private readonly inner: typeof fetch;

  constructor(baseUrl: string, options: SessionOptions, inner: typeof fetch) {
    this.refreshUrl = `${baseUrl.replace(/\/+$/, '')}/v1/auth/refresh`;
    this.tokens = { access_token: options.access_token, refresh_token: options.refresh_token };
    this.options = options;
    this.inner = inner;
  }

  get accessToken(): string {
    return this.tokens.access_token;
  }

  readonly fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const sent = request.headers.get('authorization');
    // A copy made before the body is read, for the one retry.
    const retry = request.clone();
    const res = await this.inner(request);
    if (this.ended || sent === null || !refusedToken(res)) return res;
    // Another call may have refreshed while this one was under way: then it only retries.
    if (sent === `Bearer ${this.tokens.access_token}` && !(await this.refresh())) return res;
    await res.body?.cancel();
    return this.resend(retry);
  };

  private resend(request: Request): Promise<Response> {
    request.headers.set('authorization', `Bearer ${this.tokens.access_token}`);
    return this.inner(request);
  }

  /** One refresh at a time: every caller that meets the refusal meanwhile waits for this one. */
  private refresh(): Promise<boolean> {
    this.refreshing ??= this.spend().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async spend(): Promise<boolean> {
    const res = await this.inner(this.refreshUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refresh_token: this.tokens.refresh_token }),
    });
    if (!res.ok) {
      await res.body?.cancel();
      // 401: the session has ended; anything else (429, 503) may pass, so the tokens are kept.
      if (res.status === 401) {
        this.ended = true;
        await this.options.onSessionEnded?.();
      }
      return false;
    }
    const tokens = (await res.json()) as T.Session;
    this.tokens = { access_token: tokens.access_token, refresh_token: tokens.refresh_token };
    await this.options.onRefresh?.(tokens);
    return true;
  }
}
