import type { ConnectionError, ConnectionState } from '../domain/model.js';
import type { GatewayError } from '../errors.js';
import type { AdminPrincipal } from '../identity/adminAuth.js';
import type { KeyRotation } from '../keys/rotation.js';
import type { RegistryDeps } from '../registry/deps.js';
import type { ConnectionKey } from '../domain/ids.js';
import type { AdminLoaders } from './loaders.js';

export interface LoginLink {
  readonly url: string;
  readonly expiresAt: Date;
}

export interface ConnectionTestResult {
  readonly ok: boolean;
  readonly state: ConnectionState;
  readonly tokenExpiresAt: Date | null;
  /** Why the test failed (also when the connection's own state did not change, e.g. provider down). */
  readonly error: ConnectionError | null;
}

/** The consent and token machinery the admin API drives (implemented by src/consent, src/tokens). */
export interface AdminServices {
  readonly registry: RegistryDeps;
  readonly rotation: KeyRotation;
  readonly redirectUrl: string;
  createLoginLink(key: ConnectionKey, postLoginRedirectUrl: string): Promise<LoginLink>;
  testConnection(key: ConnectionKey): Promise<ConnectionTestResult>;
}

export interface AdminContext {
  readonly services: AdminServices;
  readonly loaders: AdminLoaders;
  /** Null when authentication failed; `authError` says why (enforced per operation). */
  readonly principal: AdminPrincipal | null;
  readonly authError: GatewayError | null;
}
