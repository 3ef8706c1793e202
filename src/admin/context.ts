import type { ConnectionTestResult, LoginLink } from '../domain/model.js';
import type { GatewayError } from '../errors.js';
import type { AdminPrincipal } from '../identity/adminAuth.js';
import type { KeyRotation } from '../keys/rotation.js';
import type { RegistryDeps } from '../registry/deps.js';
import type { ConnectionKey } from '../domain/ids.js';
import type { AdminLoaders } from './loaders.js';

/** The consent and token machinery the admin API drives (implemented by src/consent, src/tokens). */
export interface AdminServices {
  readonly registry: RegistryDeps;
  readonly rotation: KeyRotation;
  readonly redirectUrl: string;
  createLoginLink(key: ConnectionKey, postLoginRedirectUrl: string): Promise<LoginLink>;
  loginLinkPending(id: string): Promise<boolean>;
  testConnection(key: ConnectionKey): Promise<ConnectionTestResult>;
}

export interface AdminContext {
  readonly services: AdminServices;
  readonly loaders: AdminLoaders;
  /** Null when authentication failed; `authError` says why (enforced per operation). */
  readonly principal: AdminPrincipal | null;
  readonly authError: GatewayError | null;
}
