// The contract as the tests' referee: every response a test receives, through the SDK or by hand,
// is checked against openapi.yaml before the test sees it. A status the operation does not
// document, a body its schema does not allow, a missing X-Request-Id, Retry-After or
// WWW-Authenticate, or any 5xx other than a documented 503 fails the test that received it.
import fs from 'node:fs';
import { OpenAPIBackend, type Document } from 'openapi-backend';
import YAML from 'yaml';
import { addContractFormats } from '../../http/formats.ts';

const spec = YAML.parse(fs.readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as Document;
const contract = new OpenAPIBackend({
  definition: spec,
  strict: true,
  quick: false,
  customizeAjv: addContractFormats,
});
const ready = contract.init();

export class ContractViolation extends Error {}

/** Checks one response against the operation it answers (or the Problem schema for 404/405). */
export async function checkResponse(method: string, url: string, res: Response): Promise<void> {
  await ready;
  const { pathname } = new URL(url);
  const where = `${method} ${pathname} → ${res.status}`;
  const fail = (why: string) => {
    throw new ContractViolation(`${where}: ${why}`);
  };
  if (!res.headers.get('x-request-id')) fail('no X-Request-Id header');
  if (res.status >= 500 && res.status !== 503 && res.status !== 501) fail('server error');
  const text = await res.clone().text();
  if (res.status === 204) {
    if (text !== '') fail('204 with a body');
    return;
  }
  const type = res.headers.get('content-type') ?? '';
  if (pathname === '/openapi.yaml' || pathname === '/openapi.json' || pathname.startsWith('/docs')) return;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    fail(`body is not JSON: ${text.slice(0, 200)}`);
  }
  if (res.status >= 400 && !type.startsWith('application/problem+json')) fail(`error with content-type ${type}`);
  if (res.status < 400 && !type.startsWith('application/json')) fail(`success with content-type ${type}`);
  if (res.status === 401 && !res.headers.get('www-authenticate')) fail('401 without WWW-Authenticate');
  if (
    (res.status === 429 || (res.status === 503 && (body as { code?: string })?.code !== 'google_not_configured')) &&
    !res.headers.get('retry-after')
  ) {
    fail('no Retry-After');
  }
  const operation = contract.router.matchOperation({ method, path: pathname, headers: {} });
  if (!operation) {
    const problem = contract.validateResponse(body, 'healthz', 500); // the shared default problem
    if (problem.errors?.length) fail(`not a Problem: ${JSON.stringify(problem.errors)}`);
    return;
  }
  const responses = (operation.responses ?? {}) as Record<string, unknown>;
  if (!responses[String(res.status)] && !responses.default) fail('status not documented');
  const result = contract.validateResponse(body, operation, res.status);
  if (result.errors?.length)
    fail(`body does not match the contract: ${JSON.stringify(result.errors)} in ${text.slice(0, 300)}`);
}

/** fetch that validates every response against the contract before the SDK sees it. */
export const validatingFetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
  const request = new Request(input, init);
  const res = await fetch(request);
  await checkResponse(request.method, request.url, res);
  return res;
};
