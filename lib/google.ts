// Google ID-token verification. Placeholder until Google sign-in lands: no verifier, so
// /v1/auth/google answers 503 google_not_configured.
import type { Config } from '../config.ts';

export interface GoogleIdentity {
  sub: string;
  email: string;
}

export interface GoogleVerifier {
  verify(credential: string, nonce?: string): Promise<GoogleIdentity | null>;
}

export function createGoogleVerifier(_config: Readonly<Config>): GoogleVerifier | null {
  return null;
}
