// operationId → handler: the one place the handlers meet openapi-backend. File, export, SDK
// function and test share the operationId as their name. The map is checked against the
// operationIds of openapi.yaml: a missing or an extra handler fails tsc.
import type { OperationId } from '../http/operation.ts';
import { changeEmail } from './changeEmail.ts';
import { changePassword } from './changePassword.ts';
import { createApiKey } from './createApiKey.ts';
import { deleteAccount } from './deleteAccount.ts';
import { forgotPassword } from './forgotPassword.ts';
import { getAccount } from './getAccount.ts';
import { getJwks } from './getJwks.ts';
import { googleSignIn } from './googleSignIn.ts';
import { healthz } from './healthz.ts';
import { linkGoogle } from './linkGoogle.ts';
import { introspect } from './introspect.ts';
import { listApiKeys } from './listApiKeys.ts';
import { listSessions } from './listSessions.ts';
import { login } from './login.ts';
import { logout } from './logout.ts';
import { readyz } from './readyz.ts';
import { refreshSession } from './refreshSession.ts';
import { register } from './register.ts';
import { resendVerification } from './resendVerification.ts';
import { resetPassword } from './resetPassword.ts';
import { revokeApiKey } from './revokeApiKey.ts';
import { revokeSession } from './revokeSession.ts';
import { unlinkGoogle } from './unlinkGoogle.ts';
import { verifyEmail } from './verifyEmail.ts';
import { verifyEmailChange } from './verifyEmailChange.ts';

export const handlers = {
  register,
  login,
  verifyEmail,
  resendVerification,
  googleSignIn,
  forgotPassword,
  resetPassword,
  createApiKey,
  listApiKeys,
  revokeApiKey,
  getAccount,
  unlinkGoogle,
  refreshSession,
  logout,
  listSessions,
  revokeSession,
  changePassword,
  changeEmail,
  verifyEmailChange,
  linkGoogle,
  deleteAccount,
  introspect,
  getJwks,
  healthz,
  readyz,
} satisfies Record<OperationId, (...args: never[]) => Promise<unknown>>;
