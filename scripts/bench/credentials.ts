// What the load sends: for every sampled account its API key, a JWT, the baseline's account id and
// a login body; and a smoke test that each kind is accepted before anything is measured.
import type { JwtService } from '../../lib/jwt.ts';
import type { LoadSpec } from './load.ts';
import type { SeededAccount, SeedResult } from './seed.ts';

export interface Credentials {
  key: LoadSpec['variants'];
  jwt: LoadSpec['variants'];
  baseline: LoadSpec['variants'];
  login: LoadSpec['variants'];
  /** POST /v1/auth/introspect of a sampled API key, as a product backend sends it. */
  introspect: LoadSpec['variants'];
}

export function credentialsFor(seeded: SeedResult, jwt: JwtService): Credentials {
  const s: SeededAccount[] = seeded.sample;
  return {
    key: s.map((a) => ({ headers: { authorization: `Bearer ${a.apiKey}` } })),
    // Minted with the service's secret, issuer and audience for the seeded session: the tokens a
    // login would hand out, without spending a scrypt hash on each.
    jwt: s.map((a) => ({ headers: { authorization: `Bearer ${jwt.sign(a.id, a.sessionId)}` } })),
    baseline: s.map((a) => ({ headers: { 'x-account-id': a.id } })),
    login: s.map((a) => ({ headers: {}, body: JSON.stringify({ username: a.username, password: seeded.password }) })),
    introspect: s.map((a) => ({
      headers: { authorization: `Bearer ${seeded.serviceKey}` },
      body: JSON.stringify({ token: a.apiKey }),
    })),
  };
}

/** One request of each kind must succeed before anything is measured. */
export async function smokeTest(
  serviceUrl: string,
  baselineUrl: string,
  creds: Credentials,
  label: string,
): Promise<void> {
  const checks: [string, string, RequestInit, LoadSpec['variants'][number]][] = [
    ['API key read', `${serviceUrl}/v1/me/account`, {}, creds.key[0]!],
    ['JWT read', `${serviceUrl}/v1/me/account`, {}, creds.jwt[0]!],
    ['baseline read', `${baselineUrl}/account`, {}, creds.baseline[0]!],
    ['login', `${serviceUrl}/v1/auth/login`, { method: 'POST' }, creds.login[0]!],
    ['introspection', `${serviceUrl}/v1/auth/introspect`, { method: 'POST' }, creds.introspect[0]!],
  ];
  for (const [what, url, init, v] of checks) {
    const res = await fetch(url, {
      ...init,
      headers: { ...v.headers, ...(v.body ? { 'content-type': 'application/json' } : {}) },
      body: v.body,
    });
    if (res.status !== 200) throw new Error(`${label}: ${what} answered ${res.status}: ${await res.text()}`);
    const text = await res.text();
    // An introspection answers 200 for a refused token too: the key must be active, or the phase
    // would measure the cheap path.
    if (what === 'introspection' && !text.includes('"active":true'))
      throw new Error(`${label}: introspection of a seeded key is not active: ${text}`);
  }
}

/** The reference must answer a sampled key with the very body the baseline sends for its account. */
export async function smokeTestReference(referenceUrl: string, baselineUrl: string, creds: Credentials): Promise<void> {
  const get = async (url: string, headers: Record<string, string>) => {
    const res = await fetch(url, { headers });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${url} answered ${res.status}: ${text}`);
    return text;
  };
  const fromMap = await get(`${referenceUrl}/account`, creds.key[0]!.headers);
  const fromDb = await get(`${baselineUrl}/account`, creds.baseline[0]!.headers);
  if (fromMap !== fromDb) throw new Error(`reference and baseline disagree:\n${fromMap}\n${fromDb}`);
}
