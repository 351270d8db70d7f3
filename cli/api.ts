// Where the CLI talks to the server: which server, with which credential, and how an answer
// becomes output or an exit code. Every request goes through @rst-auth/sdk with a client made
// here; nothing in the CLI builds a URL or a fetch of its own.
import { createRequire } from 'node:module';
import { type Client, createRstClient, isProblem } from '@rst-auth/sdk';
import { refusal, usageError } from './exit.ts';
import { type Profile, profilePath, readProfile, writeProfile } from './profile.ts';

export const DEFAULT_URL = 'http://127.0.0.1:3000';
const TIMEOUT_MS = 30_000;
// The package's own name resolves to itself (Node's self-reference), from the source folder and from
// an installed copy alike; require() reads JSON without Node 20's experimental-JSON-modules warning.
export const VERSION = (createRequire(import.meta.url)('@rst-auth/cli/package.json') as { version: string }).version;

export interface GlobalOptions {
  url?: string;
  json?: boolean;
}

export type CredentialSource = 'RST_TOKEN' | 'RST_API_KEY' | 'profile';

export interface Session {
  url: string;
  json: boolean;
  profile: Profile;
  profileFile: string;
  credential?: { token: string; source: CredentialSource };
  client: Client;
}

/** One canonical spelling per server, so a stored profile matches the same URL typed again. */
export function normaliseUrl(raw: string, from: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usageError(`${from}: not a URL: ${raw}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError(`${from}: not an http(s) URL: ${raw}`);
  if (url.username || url.password || url.search || url.hash)
    throw usageError(`${from}: a server URL has no credentials, query or fragment`);
  return url.href.replace(/\/+$/, '');
}

function sameServer(a: string | undefined, b: string): boolean {
  if (!a) return false;
  try {
    return normaliseUrl(a, 'profile') === b;
  } catch {
    return false;
  }
}

/** Resolves the server (--url, RST_URL, the profile, the default) and the credential
 * (RST_TOKEN, RST_API_KEY, the profile's token). */
export function openSession(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Session {
  const profileFile = profilePath(env);
  const profile = readProfile(profileFile);
  const [raw, from] = opts.url
    ? [opts.url, '--url']
    : env.RST_URL
      ? [env.RST_URL, 'RST_URL']
      : profile.url
        ? [profile.url, profileFile]
        : [DEFAULT_URL, 'default'];
  const url = normaliseUrl(raw, from);

  // A JWT works on every authenticated endpoint and an API key only on the owner ones, so when
  // both are set the JWT is the one that can do everything asked of it.
  let credential: Session['credential'];
  if (env.RST_TOKEN) credential = { token: env.RST_TOKEN, source: 'RST_TOKEN' };
  else if (env.RST_API_KEY) credential = { token: env.RST_API_KEY, source: 'RST_API_KEY' };
  // The stored token belongs to the server it was issued by: sending it to another --url would
  // hand a live session to whoever runs that server.
  else if (profile.token && sameServer(profile.url, url)) credential = { token: profile.token, source: 'profile' };

  const token = credential?.token;
  // The stored session refreshes itself: an expired access token is renewed with the refresh token
  // once, silently, and both are stored again at once (the refresh token just spent is dead). A
  // refresh token that is refused too means the session has ended: the profile forgets it.
  const refreshToken = credential?.source === 'profile' ? profile.refreshToken : undefined;
  const auth =
    token && refreshToken
      ? {
          session: {
            access_token: token,
            refresh_token: refreshToken,
            onRefresh: (t: { access_token: string; refresh_token: string }) => {
              profile.token = t.access_token;
              profile.refreshToken = t.refresh_token;
              writeProfile(profile, profileFile);
            },
            onSessionEnded: () => {
              profile.token = undefined;
              profile.refreshToken = undefined;
              writeProfile(profile, profileFile);
            },
          },
        }
      : credential?.source === 'RST_API_KEY'
        ? { apiKey: token }
        : { token };
  // The SDK sends either credential as `Authorization: Bearer` (RFC 6750) only.
  const { client } = createRstClient({
    baseUrl: url,
    ...auth,
    headers: { 'User-Agent': `rst-cli/${VERSION}` },
    // An auth API never redirects; following one could carry the bearer token elsewhere.
    redirect: 'error',
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  return { url, json: !!opts.json, profile, profileFile, credential, client };
}

export function requireCredential(s: Session): void {
  if (!s.credential) {
    const stored =
      s.profile.token && !sameServer(s.profile.url, s.url) ? ` (the stored session is for ${s.profile.url})` : '';
    throw refusal(`not signed in to ${s.url}${stored}`, 'run `rst login`, or set RST_TOKEN or RST_API_KEY');
  }
}

/** What every SDK function resolves to when it does not throw. `response` is missing when the
 * request never got an answer (the SDK then puts the fetch failure in `error`). */
interface SdkResult<T> {
  data?: T;
  error?: unknown;
  response?: Response;
}

/** Awaits an SDK call: the data of a 2xx answer, or a CliError (exit 1) describing the refusal. */
export async function call<T>(s: Session, pending: Promise<SdkResult<T>>): Promise<T> {
  const { data, error, response } = await pending;
  if (!response) throw unreachable(s.url, error);
  if (response.ok) return data as T;
  if (!isProblem(error))
    throw refusal(`${s.url} answered HTTP ${response.status} ${response.statusText} without a problem document`);
  // Scripts asked for the API's JSON: a refusal is the API's JSON too (the problem document).
  if (s.json) process.stdout.write(`${JSON.stringify(error, null, 2)}\n`);
  const details: string[] = [];
  if (error.detail && error.detail !== error.title) details.push(error.detail);
  for (const e of error.errors ?? []) details.push(`${e.path || '(body)'}: ${e.message}`);
  const retryAfter = response.headers.get('retry-after');
  if (retryAfter && (response.status === 429 || response.status === 503)) details.push(`retry after ${retryAfter} s`);
  if (response.status === 401 && error.code === 'unauthorized' && s.credential) {
    details.push(
      s.credential.source === 'profile'
        ? 'the stored session has ended (signed out, revoked, or unused for 30 days): run `rst login` again'
        : `the credential in ${s.credential.source} was refused`,
    );
  }
  if (response.status >= 500) details.push(`request id: ${response.headers.get('x-request-id') ?? 'none'}`);
  throw refusal(`${error.title} (${error.code})`, ...details);
}

function unreachable(url: string, error: unknown) {
  const err = error as { name?: string; message?: string; cause?: { code?: string; message?: string } } | undefined;
  if (err?.name === 'TimeoutError') return refusal(`no answer from ${url} within ${TIMEOUT_MS / 1000} s`);
  const why = err?.cause?.code ?? err?.cause?.message ?? err?.message ?? 'unknown network error';
  return refusal(`cannot reach ${url} (${why})`);
}
