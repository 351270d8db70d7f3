// A consumer's TypeScript, type-checked by test/packages.test.ts with `tsc --noEmit` against the
// installed @rst-auth/sdk's .d.ts alone (no @types/node, skipLibCheck off). It must compile.
import {
  type Account,
  type ApiKeyCreated,
  createRstClient,
  type ProblemCode,
  type RstClient,
  RstProblem,
  getAccount,
} from '@rst-auth/sdk';

const baseUrl = 'http://127.0.0.1:3000';
const anonymous: RstClient = createRstClient({ baseUrl });
const session = await anonymous.login({ body: { username: 'ada', password: 'correct horse battery staple' } });
const token: string = session.access_token;

// A credential read at call time, and an API key.
const refreshed = createRstClient({ baseUrl, token: async () => token });
const key: ApiKeyCreated = await refreshed.createApiKey({ body: { name: 'ci' } });
const withKey = createRstClient({ baseUrl, apiKey: key.raw_key, headers: { 'User-Agent': 'consumer/1' } });
const account: Account = await withKey.getAccount();
const methods: string[] = account.available_sign_in_methods;
await refreshed.revokeApiKey({ path: { key_id: key.id } });

export function describe(err: unknown): string {
  if (!(err instanceof RstProblem)) return 'not a refusal';
  const code: ProblemCode = err.code;
  switch (err.code) {
    case 'too_many_requests':
    case 'server_busy':
      return `retry in ${err.retryAfter ?? 1} s`;
    case 'validation_failed':
      return (err.errors ?? []).map((e) => `${e.path}: ${e.message}`).join('; ');
    case 'invalid_credentials':
      return `${err.status} ${err.title} ${err.detail ?? ''}`;
    default:
      return `${code} (request ${err.requestId ?? 'unknown'})`;
  }
}

// The generated functions stay available with the same client, answering { data, error, response }.
const { data, error } = await getAccount({ client: withKey.client });
if (error) console.log(error.code satisfies ProblemCode);
else console.log(data?.username, methods);
