/**
 * What the console asks `/admin/graphql` (the documents) and the shapes it gets back. No browser
 * API here: bench/console.ts sends these same documents.
 */
import { gql } from '@apollo/client';

/** Connections per page: a provider may hold 10,000 of them. */
export const CONNECTIONS_PAGE_SIZE = 50;
export const PROVIDERS_PAGE_SIZE = 50;

export type GrantType = 'AUTHORIZATION_CODE' | 'CLIENT_CREDENTIALS' | 'API_KEY' | 'BASIC';
/** Grant types whose connections hold a credential an admin types (a key, a password): no OAuth client, no consent, no expiry. */
export type StaticCredentialKind = 'API_KEY' | 'BASIC';

export const holdsStaticCredential = (grantType: GrantType): grantType is StaticCredentialKind =>
  grantType === 'API_KEY' || grantType === 'BASIC';
export type ConnectionStatus = 'CONNECTED' | 'NOT_CONNECTED' | 'ERROR';
export type PolicyKind = 'USER' | 'GROUP' | 'SERVICE_PRINCIPAL' | 'MANAGED_IDENTITY';

export interface ParameterSpec {
  name: string;
  type: 'STRING' | 'SECRET' | 'BOOL';
  level: 'PROVIDER' | 'CONNECTION';
  required: boolean;
  default: string | null;
  description: string;
  grantTypes: GrantType[];
}

export interface IdentityProvider {
  name: string;
  displayName: string;
  grantTypes: GrantType[];
  parameters: ParameterSpec[];
  defaultScopes: string[];
  docsUrl: string | null;
  /** API_KEY and BASIC entries: where the credential goes and whether it can be tested (`checkUrl`). */
  credential: { header: string; scheme: string; checkUrl: string | null } | null;
}

export interface ConnectionCounts {
  connected: number;
  notConnected: number;
  error: number;
  total: number;
}

export interface ProviderSummary {
  id: string;
  displayName: string;
  identityProvider: string;
  grantType: GrantType;
  connectionCounts: ConnectionCounts;
}

export interface Provider extends ProviderSummary {
  /** Null for API_KEY and BASIC providers, and client-credentials providers without a client of their own. */
  clientId: string | null;
  hasClientSecret: boolean;
  scopes: string[];
  parameters: { name: string; value: string }[];
  redirectUrl: string;
  version: number;
  updatedAt: string;
}

export interface AccessPolicy {
  id: string;
  kind: PolicyKind;
  objectId: string;
  tenantId: string | null;
  appIds: string[];
  issuer: string | null;
  createdAt: string;
}

export interface Connection {
  id: string;
  providerId: string;
  displayName: string;
  status: ConnectionStatus;
  error: { code: string; message: string } | null;
  clientId: string | null;
  hasClientSecret: boolean;
  /** Whether a credential (API_KEY, BASIC) or a token set (OAuth) is stored; the credential itself is write-only. */
  hasCredential: boolean;
  tokenExpiresAt: string | null;
  lastRefreshedAt: string | null;
  version: number;
  accessPolicies: AccessPolicy[];
}

export interface EncryptionKey {
  id: string;
  primary: boolean;
  createdAt: string;
  inUse: number;
}

export interface KeyRotation {
  state: 'IDLE' | 'RUNNING' | 'DONE' | 'FAILED';
  primaryKeyId: string;
  rewrapped: number;
  failed: number;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface LoginLink {
  id: string;
  url: string;
  expiresAt: string;
}

/** Cheap and admin-only: proves the credential before the console shows anything. */
export const WHO_AM_I = gql`
  query ConsoleSignIn {
    keyRotation {
      state
    }
  }
`;

export const CATALOG = gql`
  query ConsoleCatalog {
    identityProviders {
      name
      displayName
      grantTypes
      defaultScopes
      docsUrl
      credential {
        header
        scheme
        checkUrl
      }
      parameters {
        name
        type
        level
        required
        default
        description
        grantTypes
      }
    }
  }
`;

const PROVIDER_SUMMARY = gql`
  fragment ProviderSummary on CredentialProvider {
    id
    displayName
    identityProvider
    grantType
    connectionCounts {
      connected
      notConnected
      error
      total
    }
  }
`;

export const PROVIDERS = gql`
  query ConsoleProviders($first: Int!, $after: String) {
    credentialProviders(first: $first, after: $after) {
      nextCursor
      items {
        ...ProviderSummary
      }
    }
  }
  ${PROVIDER_SUMMARY}
`;

const PROVIDER_FIELDS = gql`
  fragment ProviderFields on CredentialProvider {
    ...ProviderSummary
    clientId
    hasClientSecret
    scopes
    parameters {
      name
      value
    }
    redirectUrl
    version
    updatedAt
  }
  ${PROVIDER_SUMMARY}
`;

export const PROVIDER = gql`
  query ConsoleProvider($id: ID!) {
    credentialProvider(id: $id) {
      ...ProviderFields
    }
  }
  ${PROVIDER_FIELDS}
`;

const CONNECTION_FIELDS = gql`
  fragment ConnectionFields on Connection {
    id
    providerId
    displayName
    status
    error {
      code
      message
    }
    clientId
    hasClientSecret
    hasCredential
    tokenExpiresAt
    lastRefreshedAt
    version
    accessPolicies {
      id
      kind
      objectId
      tenantId
      appIds
      issuer
      createdAt
    }
  }
`;

export const CONNECTIONS = gql`
  query ConsoleConnections($providerId: ID!, $first: Int!, $after: String, $status: ConnectionStatus) {
    credentialProvider(id: $providerId) {
      id
      connections(first: $first, after: $after, status: $status) {
        nextCursor
        items {
          ...ConnectionFields
        }
      }
    }
  }
  ${CONNECTION_FIELDS}
`;

export const CONNECTION = gql`
  query ConsoleConnection($providerId: ID!, $id: ID!) {
    connection(providerId: $providerId, id: $id) {
      ...ConnectionFields
    }
  }
  ${CONNECTION_FIELDS}
`;

export const CREATE_PROVIDER = gql`
  mutation ConsoleCreateProvider($input: CreateCredentialProviderInput!) {
    createCredentialProvider(input: $input) {
      ...ProviderFields
    }
  }
  ${PROVIDER_FIELDS}
`;

export const UPDATE_PROVIDER = gql`
  mutation ConsoleUpdateProvider($id: ID!, $input: UpdateCredentialProviderInput!, $expectedVersion: Int) {
    updateCredentialProvider(id: $id, input: $input, expectedVersion: $expectedVersion) {
      ...ProviderFields
    }
  }
  ${PROVIDER_FIELDS}
`;

export const DELETE_PROVIDER = gql`
  mutation ConsoleDeleteProvider($id: ID!, $expectedVersion: Int) {
    deleteCredentialProvider(id: $id, expectedVersion: $expectedVersion)
  }
`;

export const CREATE_CONNECTION = gql`
  mutation ConsoleCreateConnection($providerId: ID!, $input: CreateConnectionInput!) {
    createConnection(providerId: $providerId, input: $input) {
      ...ConnectionFields
    }
  }
  ${CONNECTION_FIELDS}
`;

/** Rotates an API_KEY or BASIC connection's credential (`apiKey`, or `username` with `password`). */
export const UPDATE_CONNECTION = gql`
  mutation ConsoleUpdateConnection($providerId: ID!, $id: ID!, $input: UpdateConnectionInput!) {
    updateConnection(providerId: $providerId, id: $id, input: $input) {
      ...ConnectionFields
    }
  }
  ${CONNECTION_FIELDS}
`;

export const DELETE_CONNECTION = gql`
  mutation ConsoleDeleteConnection($providerId: ID!, $id: ID!, $expectedVersion: Int) {
    deleteConnection(providerId: $providerId, id: $id, expectedVersion: $expectedVersion)
  }
`;

export const CREATE_POLICY = gql`
  mutation ConsoleCreatePolicy($providerId: ID!, $connectionId: ID!, $input: CreateAccessPolicyInput!) {
    createAccessPolicy(providerId: $providerId, connectionId: $connectionId, input: $input) {
      id
    }
  }
`;

export const DELETE_POLICY = gql`
  mutation ConsoleDeletePolicy($providerId: ID!, $connectionId: ID!, $id: ID!) {
    deleteAccessPolicy(providerId: $providerId, connectionId: $connectionId, id: $id)
  }
`;

export const CREATE_LOGIN_LINK = gql`
  mutation ConsoleLoginLink($providerId: ID!, $connectionId: ID!, $postLoginRedirectUrl: String!) {
    createLoginLink(providerId: $providerId, connectionId: $connectionId, postLoginRedirectUrl: $postLoginRedirectUrl) {
      id
      url
      expiresAt
    }
  }
`;

export const LOGIN_LINK_PENDING = gql`
  query ConsoleLoginLinkPending($id: ID!) {
    loginLinkPending(id: $id)
  }
`;

export const TEST_CONNECTION = gql`
  mutation ConsoleTestConnection($providerId: ID!, $connectionId: ID!) {
    testConnection(providerId: $providerId, connectionId: $connectionId) {
      ok
      tested
      status
      tokenExpiresAt
      error {
        code
        message
      }
    }
  }
`;

const ROTATION_FIELDS = gql`
  fragment RotationFields on KeyRotation {
    state
    primaryKeyId
    rewrapped
    failed
    startedAt
    finishedAt
  }
`;

export const KEYS = gql`
  query ConsoleKeys {
    encryptionKeys {
      id
      primary
      createdAt
      inUse
    }
    keyRotation {
      ...RotationFields
    }
  }
  ${ROTATION_FIELDS}
`;

export const ROTATE_KEY = gql`
  mutation ConsoleRotateKey {
    rotateEncryptionKey {
      ...RotationFields
    }
  }
  ${ROTATION_FIELDS}
`;

export const RETIRE_KEY = gql`
  mutation ConsoleRetireKey($id: ID!) {
    retireEncryptionKey(id: $id)
  }
`;

/** The lifecycle events a webhook can subscribe to (schema: CreateWebhookInput.events). */
export const WEBHOOK_EVENTS = [
  'connection.created',
  'connection.connected',
  'connection.reauthorization_required',
  'connection.deleted',
] as const;
/** Dead letters listed per webhook: the newest; the API pages by `first`. */
export const DEAD_LETTERS_SHOWN = 20;

export interface DeadLetter {
  eventId: string;
  eventType: string;
  attempts: number;
  lastError: string | null;
  createdAt: string;
}

export interface Webhook {
  id: string;
  url: string;
  events: string[];
  createdAt: string;
  deadLetters: DeadLetter[];
}

export const WEBHOOKS = gql`
  query ConsoleWebhooks($deadLetters: Int!) {
    webhooks {
      id
      url
      events
      createdAt
      deadLetters: deliveries(status: DEAD, first: $deadLetters) {
        eventId
        eventType
        attempts
        lastError
        createdAt
      }
    }
  }
`;

/** Its answer carries the signing secret, the only time the API shows it. */
export const CREATE_WEBHOOK = gql`
  mutation ConsoleCreateWebhook($input: CreateWebhookInput!) {
    createWebhook(input: $input) {
      id
      secret
    }
  }
`;

export const DELETE_WEBHOOK = gql`
  mutation ConsoleDeleteWebhook($id: ID!) {
    deleteWebhook(id: $id)
  }
`;
