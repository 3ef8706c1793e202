/**
 * The built-in identity provider catalog (docs/design.md "The identity provider catalog"), as data.
 *
 * Everything provider-specific lives here and only here: the OAuth code, validation and the
 * management API read these entries and never test a provider's name. Adding a provider means
 * adding an entry, nothing else.
 *
 * Templates: endpoint strings and scope strings may contain `{parameter}` placeholders over the
 * entry's parameters; `resolveEndpoints` / `effectiveScopes` (./endpoints.js) expand them.
 *
 * Endpoints: when `discovery` is set (exactly the `openIdConnect` entries), the server metadata
 * comes from discovery and its issuer must equal `issuer`; the explicit URLs of such entries are
 * what the discovery document publishes and are shown in the catalog. Otherwise the explicit
 * URLs are used as they are, and `issuer` (when known) is the value the provider puts in `iss`
 * (ID tokens it may return, RFC 9207 authorization responses).
 */
import { deepFreeze } from '../values.js';
import type { GrantType } from '../domain/model.js';
import type { OAuthQuirks } from '../oauth/types.js';

export type ParameterType = 'string' | 'secret' | 'bool';
export type ParameterLevel = 'PROVIDER' | 'CONNECTION';

/**
 * How a string value is checked and placed into templates:
 * - `url`: absolute https URL (http only when insecure http is allowed), no credentials or fragment;
 * - `issuer`: a `url` without query either (it prefixes discovery paths);
 * - `host`: a DNS host name (letters, digits, dots, hyphens), so it cannot redirect to another host;
 * - `hostLabel`: a single DNS label (a sub-domain of the provider's own domain);
 * - `pathSegment`: one URL path segment (letters, digits, `. _ ~ -`);
 * - `text`: any value without whitespace or control characters (URL-encoded in endpoint templates);
 * - `httpToken`: an HTTP token (RFC 9110: letters, digits and ``!#$%&'*+.^_`|~-``), for authentication schemes;
 * - `headerName`: an HTTP token naming a header a credential may go in (not `Host`, `Content-Length`, ...).
 */
export type ParameterFormat =
  | 'url'
  | 'issuer'
  | 'host'
  | 'hostLabel'
  | 'pathSegment'
  | 'text'
  | 'httpToken'
  | 'headerName';

/** Where a parameter is sent when it carries `sendAs`: the authorization request, token requests, or both. */
export type RequestPart = 'authorization' | 'token';

export interface ParameterSendAs {
  /** The request parameter name, for example RFC 8707 `resource` or Auth0's `audience`. */
  readonly name: string;
  readonly in: readonly RequestPart[];
}

export interface ParameterSpec {
  readonly name: string;
  readonly type: ParameterType;
  readonly level: ParameterLevel;
  /** Required with every grant type in `grantTypes` (a default satisfies it). */
  readonly required: boolean;
  readonly default: string | null;
  readonly description: string;
  readonly format: ParameterFormat;
  /** The grant types the parameter is used with; given with another grant type it is refused. */
  readonly grantTypes: readonly GrantType[];
  /** When set, the value is also sent as this request parameter. */
  readonly sendAs: ParameterSendAs | null;
  /**
   * The value is part of an endpoint URL (a placeholder of `endpoints`): it decides where the
   * client secret and the tokens are sent, so changing it needs a new secret and drops every token.
   */
  readonly endpoint: boolean;
}

/**
 * What the OAuth layer applies (`OAuthQuirks`), plus what the catalog itself needs to pick scopes
 * and validate provider input.
 */
export interface Quirks extends OAuthQuirks {
  /** Name of the authorization request parameter carrying the scopes (Slack user tokens: `user_scope`). */
  readonly scopeParameter: string;
  /** Scopes always added to authorization-code requests (refresh tokens need `offline_access` at some providers). */
  readonly authorizationCodeScopes: readonly string[];
  /** Scope templates used for client credentials when the provider lists no scopes (Entra `{resourceUri}/.default`). */
  readonly clientCredentialsScopes: readonly string[];
  /** The client may be public: no client secret (PKCE protects the code instead). */
  readonly publicClientAllowed: boolean;
}

export interface ProviderEndpoints {
  readonly authorizationUrl: string | null;
  readonly tokenUrl: string | null;
  readonly discovery: string | null;
  readonly issuer: string | null;
  /**
   * RFC 7009 token revocation endpoint: deleting a connection revokes its tokens there. Entries with
   * discovery use the discovered `revocation_endpoint` instead.
   */
  readonly revocationUrl: string | null;
}

/** The scheme value that sends a key bare, without a scheme (`X-API-Key: <key>`). */
export const NO_SCHEME = 'none';

/**
 * How an API_KEY or BASIC credential is sent, as templates over the entry's parameters: the header
 * `header: <scheme> <credential>` (BASIC: `Authorization: Basic base64(username:password)`), and
 * the URL `testConnection` sends it to (GET, any 2xx: accepted), when the entry knows one.
 */
export interface CredentialSpec {
  readonly header: string;
  /** `Bearer`, `Basic`, `Token`, ...; NO_SCHEME sends the credential bare. */
  readonly scheme: string;
  readonly checkUrl: string | null;
}

export interface IdentityProviderEntry {
  readonly name: string;
  readonly displayName: string;
  readonly grantTypes: readonly GrantType[];
  readonly parameters: readonly ParameterSpec[];
  /** Scope templates used for authorization code when the provider lists no scopes. */
  readonly defaultScopes: readonly string[];
  readonly endpoints: ProviderEndpoints;
  readonly quirks: Quirks;
  readonly docsUrl: string | null;
  /** Entries of the API_KEY and BASIC kinds: how the credential is sent; null for OAuth entries. */
  readonly credential: CredentialSpec | null;
}

/**
 * Opaque tokens without `expires_in` are refreshed after an hour: short enough to be safe, long
 * enough to be cheap. (A JWT access token without `expires_in` is renewed by its own `exp`.)
 */
const ASSUMED_TOKEN_LIFETIME_SECONDS = 3600;

const STANDARD_QUIRKS: Quirks = {
  scopeSeparator: ' ',
  scopeParameter: 'scope',
  pkce: 'S256',
  extraAuthorizationParams: {},
  authorizationCodeScopes: [],
  clientCredentialsScopes: [],
  tokensNeverExpire: false,
  defaultTokenLifetimeSeconds: ASSUMED_TOKEN_LIFETIME_SECONDS,
  tokenResponsePath: null,
  keepResponseFields: [],
  rotatesRefreshTokens: false,
  clientAuth: 'client_secret_post',
  publicClientAllowed: false,
  openIdConnect: false,
};

const NEVER_EXPIRE = { tokensNeverExpire: true, defaultTokenLifetimeSeconds: null } as const;

const BOTH: readonly GrantType[] = ['AUTHORIZATION_CODE', 'CLIENT_CREDENTIALS'];
const CODE_ONLY: readonly GrantType[] = ['AUTHORIZATION_CODE'];

type ParameterDraft = Omit<
  ParameterSpec,
  'type' | 'level' | 'required' | 'default' | 'grantTypes' | 'sendAs' | 'format' | 'endpoint'
> &
  Partial<Pick<ParameterSpec, 'type' | 'level' | 'required' | 'default' | 'format' | 'sendAs'>> & {
    readonly grantTypes?: readonly GrantType[];
  };

interface EntryDraft extends Omit<IdentityProviderEntry, 'parameters' | 'quirks' | 'endpoints' | 'credential'> {
  readonly parameters: readonly ParameterDraft[];
  readonly quirks: Partial<Quirks>;
  readonly endpoints: Partial<ProviderEndpoints>;
  readonly credential?: CredentialSpec;
}

/** A `{parameter}` placeholder of an endpoint or scope template. */
export const PLACEHOLDER = /\{([A-Za-z][A-Za-z0-9]*)\}/g;

/** Names of the `{parameter}` placeholders of a template, in order. */
export function templateParameters(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1] as string);
}

/**
 * Names of the parameters the endpoint templates (and a credential's header and check URL) are made
 * of: derived, so it cannot drift from them. A stored credential is bound to them like tokens are.
 */
function endpointParameterNames(
  endpoints: Partial<ProviderEndpoints>,
  credential: CredentialSpec | undefined,
): ReadonlySet<string> {
  const templates = [...Object.values(endpoints), ...(credential ? Object.values(credential) : [])].filter(
    (t): t is string => typeof t === 'string',
  );
  return new Set(templates.flatMap(templateParameters));
}

function entry(draft: EntryDraft): IdentityProviderEntry {
  const endpointNames = endpointParameterNames(draft.endpoints, draft.credential);
  return {
    ...draft,
    parameters: draft.parameters.map((p) => ({
      type: 'string',
      level: 'PROVIDER',
      required: false,
      default: null,
      format: 'text',
      sendAs: null,
      ...p,
      grantTypes: p.grantTypes ?? draft.grantTypes,
      endpoint: endpointNames.has(p.name),
    })),
    endpoints: {
      authorizationUrl: null,
      tokenUrl: null,
      discovery: null,
      issuer: null,
      revocationUrl: null,
      ...draft.endpoints,
    },
    quirks: { ...STANDARD_QUIRKS, ...draft.quirks },
    credential: draft.credential ?? null,
  };
}

// Parameters shared by the generic entries -------------------------------------------------------

const AUTHORIZATION_URL: ParameterDraft = {
  name: 'authorizationUrl',
  required: true,
  format: 'url',
  grantTypes: CODE_ONLY,
  description: "The authorization server's authorization endpoint.",
};
const TOKEN_URL: ParameterDraft = {
  name: 'tokenUrl',
  required: true,
  format: 'url',
  description: "The authorization server's token endpoint.",
};
const OPTIONAL_ISSUER: ParameterDraft = {
  name: 'issuer',
  format: 'issuer',
  description: 'Issuer identifier of the authorization server; checked against `iss` in its responses when set.',
};
const REVOCATION_URL: ParameterDraft = {
  name: 'revocationUrl',
  format: 'url',
  description:
    "The authorization server's RFC 7009 revocation endpoint: a deleted connection's tokens are revoked there when set.",
};
const AUDIENCE: ParameterDraft = {
  name: 'audience',
  sendAs: { name: 'audience', in: ['authorization', 'token'] },
  description: 'Sent as `audience` with authorization and token requests when set (Auth0-style API audience).',
};
const RESOURCE: ParameterDraft = {
  name: 'resource',
  sendAs: { name: 'resource', in: ['authorization', 'token'] },
  description: 'Sent as `resource` with authorization and token requests when set (RFC 8707 resource indicator).',
};

const OIDC_SCOPES = ['openid', 'profile', 'email'];

// API keys and HTTP Basic credentials -----------------------------------------------------------

const API_KEY: readonly GrantType[] = ['API_KEY'];
const BASIC: readonly GrantType[] = ['BASIC'];
/** Static credentials are never refreshed and need no endpoint of an authorization server. */
const STATIC_CREDENTIAL_QUIRKS: Partial<Quirks> = { ...NEVER_EXPIRE, pkce: 'none' };

const CHECK_URL: ParameterDraft = {
  name: 'checkUrl',
  format: 'url',
  description:
    '`testConnection` sends the credential here (GET) and expects a 2xx answer; without it the credential cannot be tested.',
};

/** A well-known API whose keys go in `Authorization: Bearer <key>`. */
function bearerKeyApi(name: string, displayName: string, checkUrl: string, docsUrl: string): IdentityProviderEntry {
  return entry({
    name,
    displayName,
    grantTypes: API_KEY,
    parameters: [],
    defaultScopes: [],
    endpoints: {},
    quirks: STATIC_CREDENTIAL_QUIRKS,
    credential: { header: 'Authorization', scheme: 'Bearer', checkUrl },
    docsUrl,
  });
}

const CATALOG: readonly IdentityProviderEntry[] = [
  entry({
    name: 'oauth2',
    displayName: 'Generic OAuth 2.0',
    grantTypes: BOTH,
    parameters: [AUTHORIZATION_URL, TOKEN_URL, OPTIONAL_ISSUER, REVOCATION_URL, AUDIENCE, RESOURCE],
    defaultScopes: [],
    endpoints: {
      authorizationUrl: '{authorizationUrl}',
      tokenUrl: '{tokenUrl}',
      issuer: '{issuer}',
      revocationUrl: '{revocationUrl}',
    },
    // RFC 6749 obliges servers to support HTTP Basic client authentication, not the body form.
    quirks: { pkce: 'none', clientAuth: 'client_secret_basic' },
    docsUrl: 'https://www.rfc-editor.org/rfc/rfc6749',
  }),
  entry({
    name: 'oauth2pkce',
    displayName: 'Generic OAuth 2.0 with PKCE',
    grantTypes: CODE_ONLY,
    parameters: [AUTHORIZATION_URL, TOKEN_URL, OPTIONAL_ISSUER, REVOCATION_URL, AUDIENCE, RESOURCE],
    defaultScopes: [],
    endpoints: {
      authorizationUrl: '{authorizationUrl}',
      tokenUrl: '{tokenUrl}',
      issuer: '{issuer}',
      revocationUrl: '{revocationUrl}',
    },
    quirks: { pkce: 'S256', clientAuth: 'client_secret_basic', publicClientAllowed: true },
    docsUrl: 'https://www.rfc-editor.org/rfc/rfc7636',
  }),
  entry({
    name: 'oidc',
    displayName: 'Generic OpenID Connect (discovery)',
    grantTypes: BOTH,
    parameters: [
      {
        name: 'issuer',
        required: true,
        format: 'issuer',
        description: 'Issuer URL; its `/.well-known/openid-configuration` describes the provider.',
      },
      AUDIENCE,
      RESOURCE,
    ],
    defaultScopes: [...OIDC_SCOPES, 'offline_access'],
    endpoints: { discovery: '{issuer}/.well-known/openid-configuration', issuer: '{issuer}' },
    quirks: { clientAuth: 'client_secret_basic', openIdConnect: true },
    docsUrl: 'https://openid.net/specs/openid-connect-discovery-1_0.html',
  }),
  entry({
    name: 'entra',
    displayName: 'Microsoft Entra ID',
    grantTypes: BOTH,
    parameters: [
      {
        name: 'tenantId',
        required: true,
        format: 'pathSegment',
        description:
          'Directory (tenant) ID or domain; `common` / `organizations` for multi-tenant apps (authorization code only).',
      },
      {
        name: 'resourceUri',
        default: 'https://graph.microsoft.com',
        description: 'Resource (application ID URI) whose `/.default` scope is requested when no scopes are given.',
      },
    ],
    defaultScopes: ['{resourceUri}/.default'],
    endpoints: {
      authorizationUrl: 'https://login.microsoftonline.com/{tenantId}/oauth2/v2.0/authorize',
      tokenUrl: 'https://login.microsoftonline.com/{tenantId}/oauth2/v2.0/token',
    },
    quirks: {
      authorizationCodeScopes: ['offline_access'],
      clientCredentialsScopes: ['{resourceUri}/.default'],
      // Every refresh returns a new refresh token; the newest one is the one to keep.
      rotatesRefreshTokens: true,
    },
    docsUrl: 'https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow',
  }),
  entry({
    name: 'github',
    displayName: 'GitHub',
    grantTypes: CODE_ONLY,
    parameters: [
      {
        name: 'domain',
        default: 'github.com',
        format: 'host',
        description: 'Host name of GitHub Enterprise Server; github.com by default.',
      },
    ],
    defaultScopes: ['read:user', 'user:email'],
    endpoints: {
      authorizationUrl: 'https://{domain}/login/oauth/authorize',
      tokenUrl: 'https://{domain}/login/oauth/access_token',
    },
    quirks: {
      ...NEVER_EXPIRE,
      // GitHub Apps with expiring user tokens hand out single-use refresh tokens.
      rotatesRefreshTokens: true,
      tokenRequestAccept: 'application/json',
    },
    docsUrl: 'https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps',
  }),
  entry({
    name: 'google',
    displayName: 'Google',
    grantTypes: CODE_ONLY,
    parameters: [
      {
        name: 'includeGrantedScopes',
        type: 'bool',
        default: 'false',
        sendAs: { name: 'include_granted_scopes', in: ['authorization'] },
        description: 'Incremental authorization: the new token also covers scopes granted earlier.',
      },
    ],
    defaultScopes: OIDC_SCOPES,
    endpoints: {
      authorizationUrl: 'https://accounts.google.com/o/oauth2/v2/auth',
      tokenUrl: 'https://oauth2.googleapis.com/token',
      revocationUrl: 'https://oauth2.googleapis.com/revoke',
      discovery: 'https://accounts.google.com/.well-known/openid-configuration',
      issuer: 'https://accounts.google.com',
    },
    // Without offline access + a forced consent Google returns a refresh token only the first time.
    quirks: { extraAuthorizationParams: { access_type: 'offline', prompt: 'consent' }, openIdConnect: true },
    docsUrl: 'https://developers.google.com/identity/protocols/oauth2/web-server',
  }),
  entry({
    name: 'slack',
    displayName: 'Slack',
    grantTypes: CODE_ONLY,
    parameters: [],
    defaultScopes: ['users:read'],
    endpoints: {
      authorizationUrl: 'https://slack.com/oauth/v2/authorize',
      tokenUrl: 'https://slack.com/api/oauth.v2.access',
    },
    quirks: {
      scopeSeparator: ',',
      // User tokens: `scope` would ask for bot scopes; the user's token then sits under `authed_user`.
      scopeParameter: 'user_scope',
      tokenResponsePath: 'authed_user',
      keepResponseFields: ['team.id', 'authed_user.id', 'enterprise.id'],
      pkce: 'none',
      // Without token rotation Slack tokens never expire; with it, refresh tokens are single use.
      ...NEVER_EXPIRE,
      rotatesRefreshTokens: true,
    },
    docsUrl: 'https://api.slack.com/authentication/oauth-v2',
  }),
  entry({
    name: 'salesforce',
    displayName: 'Salesforce',
    grantTypes: BOTH,
    parameters: [
      {
        name: 'instanceName',
        default: 'login.salesforce.com',
        format: 'host',
        description:
          'Login host: login.salesforce.com, test.salesforce.com or your My Domain (required for client credentials).',
      },
    ],
    defaultScopes: ['api', 'refresh_token'],
    endpoints: {
      authorizationUrl: 'https://{instanceName}/services/oauth2/authorize',
      tokenUrl: 'https://{instanceName}/services/oauth2/token',
      revocationUrl: 'https://{instanceName}/services/oauth2/revoke',
    },
    // No `expires_in`: the org's session timeout decides (two hours by default), so the assumed hour holds.
    quirks: { keepResponseFields: ['instance_url', 'id'] },
    docsUrl: 'https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_web_server_flow.htm',
  }),
  entry({
    name: 'servicenow',
    displayName: 'ServiceNow',
    grantTypes: BOTH,
    parameters: [
      {
        name: 'instanceName',
        required: true,
        format: 'hostLabel',
        description: 'Instance name: `acme` for acme.service-now.com.',
      },
    ],
    defaultScopes: ['useraccount'],
    endpoints: {
      authorizationUrl: 'https://{instanceName}.service-now.com/oauth_auth.do',
      tokenUrl: 'https://{instanceName}.service-now.com/oauth_token.do',
    },
    quirks: { pkce: 'none' },
    docsUrl: 'https://developer.servicenow.com/dev.do#!/reference/api/latest/rest/c_OAuthAPI',
  }),
  entry({
    name: 'linkedin',
    displayName: 'LinkedIn',
    grantTypes: CODE_ONLY,
    parameters: [],
    defaultScopes: OIDC_SCOPES,
    endpoints: {
      authorizationUrl: 'https://www.linkedin.com/oauth/v2/authorization',
      tokenUrl: 'https://www.linkedin.com/oauth/v2/accessToken',
      revocationUrl: 'https://www.linkedin.com/oauth/v2/revoke',
      // Requesting `openid` yields an ID token with this issuer.
      issuer: 'https://www.linkedin.com/oauth',
    },
    quirks: { pkce: 'none' },
    docsUrl: 'https://learn.microsoft.com/en-us/linkedin/shared/authentication/authorization-code-flow',
  }),
  entry({
    name: 'dropbox',
    displayName: 'Dropbox',
    grantTypes: CODE_ONLY,
    parameters: [],
    defaultScopes: [],
    endpoints: {
      authorizationUrl: 'https://www.dropbox.com/oauth2/authorize',
      tokenUrl: 'https://api.dropboxapi.com/oauth2/token',
    },
    // Short-lived access tokens come with a refresh token only for offline access; Dropbox keeps
    // the refresh token (a refresh answers without a new one).
    quirks: {
      extraAuthorizationParams: { token_access_type: 'offline' },
      keepResponseFields: ['account_id', 'team_id'],
      clientAuth: 'client_secret_basic',
    },
    docsUrl: 'https://developers.dropbox.com/oauth-guide',
  }),
  entry({
    name: 'spotify',
    displayName: 'Spotify',
    grantTypes: BOTH,
    parameters: [],
    defaultScopes: ['user-read-private', 'user-read-email'],
    endpoints: {
      authorizationUrl: 'https://accounts.spotify.com/authorize',
      tokenUrl: 'https://accounts.spotify.com/api/token',
    },
    quirks: { clientAuth: 'client_secret_basic', rotatesRefreshTokens: true },
    docsUrl: 'https://developer.spotify.com/documentation/web-api/concepts/authorization',
  }),
  entry({
    name: 'zoom',
    displayName: 'Zoom',
    grantTypes: CODE_ONLY,
    parameters: [],
    defaultScopes: [],
    endpoints: {
      authorizationUrl: 'https://zoom.us/oauth/authorize',
      tokenUrl: 'https://zoom.us/oauth/token',
      revocationUrl: 'https://zoom.us/oauth/revoke',
    },
    quirks: { clientAuth: 'client_secret_basic', rotatesRefreshTokens: true },
    docsUrl: 'https://developers.zoom.us/docs/integrations/oauth/',
  }),
  entry({
    name: 'box',
    displayName: 'Box',
    grantTypes: BOTH,
    parameters: [
      {
        name: 'boxSubjectType',
        required: true,
        default: 'enterprise',
        grantTypes: ['CLIENT_CREDENTIALS'],
        sendAs: { name: 'box_subject_type', in: ['token'] },
        description: 'Client credentials: whose token to get, `enterprise` (service account) or `user`.',
      },
      {
        name: 'boxSubjectId',
        required: true,
        grantTypes: ['CLIENT_CREDENTIALS'],
        sendAs: { name: 'box_subject_id', in: ['token'] },
        description: 'Client credentials: the enterprise ID or user ID matching `boxSubjectType`.',
      },
    ],
    defaultScopes: [],
    endpoints: {
      authorizationUrl: 'https://account.box.com/api/oauth2/authorize',
      tokenUrl: 'https://api.box.com/oauth2/token',
      revocationUrl: 'https://api.box.com/oauth2/revoke',
    },
    // Box refresh tokens are single use.
    quirks: { pkce: 'none', rotatesRefreshTokens: true },
    docsUrl: 'https://developer.box.com/guides/authentication/oauth2/',
  }),
  entry({
    name: 'atlassian',
    displayName: 'Atlassian',
    grantTypes: CODE_ONLY,
    parameters: [],
    defaultScopes: ['read:me'],
    endpoints: {
      authorizationUrl: 'https://auth.atlassian.com/authorize',
      tokenUrl: 'https://auth.atlassian.com/oauth/token',
    },
    quirks: {
      pkce: 'none',
      extraAuthorizationParams: { audience: 'api.atlassian.com', prompt: 'consent' },
      authorizationCodeScopes: ['offline_access'],
      rotatesRefreshTokens: true,
    },
    docsUrl: 'https://developer.atlassian.com/cloud/jira/platform/oauth-2-3lo-apps/',
  }),
  entry({
    name: 'gitlab',
    displayName: 'GitLab',
    grantTypes: CODE_ONLY,
    parameters: [
      {
        name: 'domain',
        default: 'gitlab.com',
        format: 'host',
        description: 'Host name of a self-managed GitLab; gitlab.com by default.',
      },
    ],
    defaultScopes: ['read_user'],
    endpoints: {
      authorizationUrl: 'https://{domain}/oauth/authorize',
      tokenUrl: 'https://{domain}/oauth/token',
      revocationUrl: 'https://{domain}/oauth/revoke',
    },
    quirks: { rotatesRefreshTokens: true },
    docsUrl: 'https://docs.gitlab.com/ee/api/oauth2.html',
  }),
  entry({
    name: 'okta',
    displayName: 'Okta',
    grantTypes: BOTH,
    parameters: [
      {
        name: 'domain',
        required: true,
        format: 'host',
        description: 'Okta org host name, for example `acme.okta.com`.',
      },
      {
        name: 'authorizationServerId',
        required: true,
        default: 'default',
        format: 'pathSegment',
        description: 'Custom authorization server ID (`default` is the one every org has).',
      },
    ],
    defaultScopes: OIDC_SCOPES,
    endpoints: {
      authorizationUrl: 'https://{domain}/oauth2/{authorizationServerId}/v1/authorize',
      tokenUrl: 'https://{domain}/oauth2/{authorizationServerId}/v1/token',
      discovery: 'https://{domain}/oauth2/{authorizationServerId}/.well-known/openid-configuration',
      issuer: 'https://{domain}/oauth2/{authorizationServerId}',
    },
    quirks: {
      authorizationCodeScopes: ['offline_access'],
      clientAuth: 'client_secret_basic',
      rotatesRefreshTokens: true,
      openIdConnect: true,
    },
    docsUrl: 'https://developer.okta.com/docs/guides/implement-grant-type/authcode/main/',
  }),
  entry({
    name: 'auth0',
    displayName: 'Auth0',
    grantTypes: BOTH,
    parameters: [
      {
        name: 'domain',
        required: true,
        format: 'host',
        description: 'Tenant or custom domain, for example `acme.eu.auth0.com`.',
      },
      {
        ...AUDIENCE,
        required: true,
        description: 'API identifier the access tokens are for (Auth0 issues API tokens only for an audience).',
      },
    ],
    defaultScopes: OIDC_SCOPES,
    endpoints: {
      authorizationUrl: 'https://{domain}/authorize',
      tokenUrl: 'https://{domain}/oauth/token',
      discovery: 'https://{domain}/.well-known/openid-configuration',
      issuer: 'https://{domain}/',
    },
    quirks: { authorizationCodeScopes: ['offline_access'], rotatesRefreshTokens: true, openIdConnect: true },
    docsUrl: 'https://auth0.com/docs/get-started/authentication-and-authorization-flow/authorization-code-flow',
  }),
  entry({
    name: 'hubspot',
    displayName: 'HubSpot',
    grantTypes: CODE_ONLY,
    parameters: [],
    defaultScopes: ['oauth'],
    endpoints: {
      authorizationUrl: 'https://app.hubspot.com/oauth/authorize',
      tokenUrl: 'https://api.hubapi.com/oauth/v1/token',
    },
    quirks: { pkce: 'none', keepResponseFields: ['hub_id'] },
    docsUrl: 'https://developers.hubspot.com/docs/api/working-with-oauth',
  }),
  entry({
    name: 'notion',
    displayName: 'Notion',
    grantTypes: CODE_ONLY,
    parameters: [],
    // Notion has no scopes: the user picks pages at consent.
    defaultScopes: [],
    endpoints: {
      authorizationUrl: 'https://api.notion.com/v1/oauth/authorize',
      tokenUrl: 'https://api.notion.com/v1/oauth/token',
    },
    quirks: {
      pkce: 'none',
      extraAuthorizationParams: { owner: 'user' },
      ...NEVER_EXPIRE,
      keepResponseFields: ['workspace_id', 'workspace_name', 'bot_id'],
      clientAuth: 'client_secret_basic',
    },
    docsUrl: 'https://developers.notion.com/docs/authorization',
  }),
  entry({
    name: 'apikey',
    displayName: 'Generic API key',
    grantTypes: API_KEY,
    parameters: [
      {
        name: 'headerName',
        default: 'Authorization',
        format: 'headerName',
        description: 'The request header the key goes in, for example `X-API-Key`.',
      },
      {
        name: 'scheme',
        default: 'Bearer',
        format: 'httpToken',
        description: `The scheme before the key (\`Authorization: Bearer <key>\`); \`${NO_SCHEME}\` sends the key bare (\`X-API-Key: <key>\`).`,
      },
      CHECK_URL,
    ],
    defaultScopes: [],
    endpoints: {},
    quirks: STATIC_CREDENTIAL_QUIRKS,
    credential: { header: '{headerName}', scheme: '{scheme}', checkUrl: '{checkUrl}' },
    docsUrl: 'https://www.rfc-editor.org/rfc/rfc6750#section-2.1',
  }),
  entry({
    name: 'basic',
    displayName: 'Generic HTTP Basic (username and password)',
    grantTypes: BASIC,
    parameters: [CHECK_URL],
    defaultScopes: [],
    endpoints: {},
    quirks: STATIC_CREDENTIAL_QUIRKS,
    credential: { header: 'Authorization', scheme: 'Basic', checkUrl: '{checkUrl}' },
    docsUrl: 'https://www.rfc-editor.org/rfc/rfc7617',
  }),
  bearerKeyApi(
    'stripe',
    'Stripe (secret key)',
    'https://api.stripe.com/v1/balance',
    'https://docs.stripe.com/api/authentication',
  ),
  bearerKeyApi(
    'sendgrid',
    'SendGrid',
    'https://api.sendgrid.com/v3/scopes',
    'https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/authentication',
  ),
  bearerKeyApi(
    'openai',
    'OpenAI',
    'https://api.openai.com/v1/models',
    'https://platform.openai.com/docs/api-reference/authentication',
  ),
  entry({
    name: 'mailgun',
    displayName: 'Mailgun (username `api`, password: the API key)',
    grantTypes: BASIC,
    parameters: [
      {
        name: 'apiHost',
        default: 'api.mailgun.net',
        format: 'host',
        description: 'API host: `api.mailgun.net` (US) or `api.eu.mailgun.net` (EU).',
      },
    ],
    defaultScopes: [],
    endpoints: {},
    quirks: STATIC_CREDENTIAL_QUIRKS,
    credential: { header: 'Authorization', scheme: 'Basic', checkUrl: 'https://{apiHost}/v3/domains' },
    docsUrl: 'https://documentation.mailgun.com/docs/mailgun/api-reference/authentication',
  }),
];

export const IDENTITY_PROVIDERS: readonly IdentityProviderEntry[] = deepFreeze(CATALOG);

export const IDENTITY_PROVIDER_NAMES: readonly string[] = Object.freeze(IDENTITY_PROVIDERS.map((e) => e.name));

const BY_NAME: ReadonlyMap<string, IdentityProviderEntry> = new Map(IDENTITY_PROVIDERS.map((e) => [e.name, e]));

export function findIdentityProvider(name: string): IdentityProviderEntry | undefined {
  return BY_NAME.get(name);
}
