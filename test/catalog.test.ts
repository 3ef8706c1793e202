import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../src/errors.js';
import { GRANT_TYPES, isStaticCredential, type GrantType } from '../src/domain/model.js';
import { credentialCheckUrl, credentialHeader } from '../src/providers/credentials.js';
import {
  IDENTITY_PROVIDERS,
  IDENTITY_PROVIDER_NAMES,
  findIdentityProvider,
  type IdentityProviderEntry,
  type ParameterSpec,
} from '../src/providers/catalog.js';
import {
  effectiveScopes,
  extraAuthorizationParameters,
  extraTokenParameters,
  resolveEndpoints,
  scopeString,
  templateParameters,
} from '../src/providers/endpoints.js';
import { checkParameterValue } from '../src/providers/formats.js';
import {
  connectionParameterSpecs,
  validateParameters,
  validateProviderInput,
  validateProviderPatch,
  type ProviderInputRaw,
} from '../src/providers/validate.js';
import { validateId } from '../src/domain/ids.js';

const REQUIRED_NAMES = [
  'oauth2',
  'oauth2pkce',
  'oidc',
  'entra',
  'github',
  'google',
  'slack',
  'salesforce',
  'servicenow',
  'linkedin',
  'dropbox',
  'spotify',
  'zoom',
  'box',
  'atlassian',
  'gitlab',
  'okta',
  'auth0',
  'hubspot',
  'notion',
];

function entryOf(name: string): IdentityProviderEntry {
  const entry = findIdentityProvider(name);
  if (entry === undefined) throw new Error(`no catalog entry ${name}`);
  return entry;
}

function gatewayErrorOf(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw e;
  }
  throw new Error('expected a GatewayError, nothing was thrown');
}

/** Asserts BAD_USER_INPUT naming exactly `field`, with exactly `message` after the field. */
function expectBadInput(fn: () => unknown, field: string, message: string): GatewayError {
  const e = gatewayErrorOf(fn);
  expect(e.code).toBe('BAD_USER_INPUT');
  expect(e.details['field']).toBe(field);
  expect(e.message).toBe(`${field} ${message}`);
  return e;
}

const ENTRA: ProviderInputRaw = {
  id: 'entra-01',
  identityProvider: 'entra',
  grantType: 'AUTHORIZATION_CODE',
  clientId: 'b1d7e0f4-0000-4000-8000-000000000001',
  clientSecret: 'entra-client-secret-value',
  scopes: ['User.Read'],
  parameters: { tenantId: 'contoso.onmicrosoft.com' },
};

const GENERIC: ProviderInputRaw = {
  id: 'generic-01',
  identityProvider: 'oauth2',
  grantType: 'AUTHORIZATION_CODE',
  clientId: 'client',
  clientSecret: 'secret',
  parameters: { authorizationUrl: 'https://idp.example.com/authorize', tokenUrl: 'https://idp.example.com/token' },
};

const with_ = (base: ProviderInputRaw, change: Partial<ProviderInputRaw>): ProviderInputRaw => ({ ...base, ...change });

/** A value that passes each format, to build the smallest valid parameter set of an entry. */
function sampleValue(spec: ParameterSpec): string {
  if (spec.type === 'bool') return 'true';
  const samples = {
    url: 'https://idp.example.com/endpoint',
    issuer: 'https://idp.example.com',
    host: 'idp.example.com',
    hostLabel: 'acme',
    pathSegment: 'segment',
    text: 'value',
    httpToken: 'Token',
    headerName: 'X-API-Key',
  } as const;
  return samples[spec.format];
}

function minimalParameters(entry: IdentityProviderEntry, grantType: GrantType): Record<string, string> {
  const out: Record<string, string> = {};
  for (const spec of entry.parameters) {
    if (spec.required && spec.default === null && spec.grantTypes.includes(grantType))
      out[spec.name] = sampleValue(spec);
  }
  return out;
}

describe('identity provider catalog', () => {
  it('has at least 20 entries with unique names, including every provider docs/design.md requires', () => {
    expect(IDENTITY_PROVIDERS.length).toBeGreaterThanOrEqual(20);
    const names = IDENTITY_PROVIDERS.map((e) => e.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(expect.arrayContaining(REQUIRED_NAMES));
    expect(IDENTITY_PROVIDER_NAMES).toEqual(names);
  });

  it('is deeply frozen', () => {
    const github = entryOf('github');
    expect(Object.isFrozen(IDENTITY_PROVIDERS)).toBe(true);
    expect(() => {
      (github as { name: string }).name = 'evil';
    }).toThrow(TypeError);
    expect(() => {
      (github.quirks as { tokensNeverExpire: boolean }).tokensNeverExpire = false;
    }).toThrow(TypeError);
    expect(() => {
      (entryOf('google').quirks.extraAuthorizationParams as Record<string, string>)['prompt'] = 'none';
    }).toThrow(TypeError);
    expect(() => (entryOf('entra').parameters as ParameterSpec[]).push(entryOf('entra').parameters[0]!)).toThrow(
      TypeError,
    );
  });

  it('finds entries by exact name only', () => {
    expect(findIdentityProvider('entra')?.displayName).toBe('Microsoft Entra ID');
    expect(findIdentityProvider('Entra')).toBeUndefined();
    expect(findIdentityProvider('constructor')).toBeUndefined();
    expect(findIdentityProvider('__proto__')).toBeUndefined();
  });

  it('keeps provider names out of the generic code (quirks are data, not if chains)', () => {
    const dir = join(import.meta.dirname, '../src/providers');
    const generic = readdirSync(dir).filter((f) => f.endsWith('.ts') && f !== 'catalog.ts');
    expect(generic.length).toBeGreaterThan(0);
    for (const file of generic) {
      const source = readFileSync(join(dir, file), 'utf8');
      for (const name of IDENTITY_PROVIDER_NAMES) {
        expect(source, `${file} names ${name}`).not.toMatch(new RegExp(`['"\`]${name}['"\`]`));
      }
    }
  });

  describe.each(IDENTITY_PROVIDERS.map((e) => [e.name, e] as const))('entry %s', (_name, entry) => {
    it('has a name, display name and grant types from the closed set', () => {
      expect(entry.name).toMatch(/^[a-z][a-z0-9]*$/);
      expect(entry.displayName.length).toBeGreaterThan(0);
      expect(entry.grantTypes.length).toBeGreaterThan(0);
      expect(new Set(entry.grantTypes).size).toBe(entry.grantTypes.length);
      for (const g of entry.grantTypes) expect(GRANT_TYPES).toContain(g);
      if (entry.docsUrl !== null) expect(entry.docsUrl).toMatch(/^https:\/\//);
    });

    it('declares well-formed, unique parameters whose defaults pass their own checks', () => {
      const names = entry.parameters.map((p) => p.name);
      expect(new Set(names).size).toBe(names.length);
      for (const p of entry.parameters) {
        expect(p.name).toMatch(/^[A-Za-z][A-Za-z0-9]*$/);
        expect(['string', 'secret', 'bool']).toContain(p.type);
        expect(['PROVIDER', 'CONNECTION']).toContain(p.level);
        expect(p.description.length).toBeGreaterThan(0);
        expect(p.grantTypes.length).toBeGreaterThan(0);
        for (const g of p.grantTypes) expect(entry.grantTypes).toContain(g);
        if (p.default !== null) expect(checkParameterValue(p, p.default)).toEqual({ ok: true, value: p.default });
        // Provider parameters are stored in clear: a secret one would leak through the admin API.
        expect(p.type).not.toBe('secret');
      }
    });

    it('uses only declared parameters in its endpoint and scope templates', () => {
      const declared = entry.parameters.map((p) => p.name);
      const { authorizationUrl, tokenUrl, discovery, issuer } = entry.endpoints;
      const templates = [
        authorizationUrl,
        tokenUrl,
        discovery,
        issuer,
        ...entry.defaultScopes,
        ...entry.quirks.clientCredentialsScopes,
      ];
      for (const t of templates) {
        if (t === null) continue;
        for (const used of templateParameters(t)) expect(declared, `${t} uses {${used}}`).toContain(used);
      }
    });

    it('can reach its endpoints for every grant type with only the required parameters', () => {
      for (const grantType of entry.grantTypes) {
        if (isStaticCredential(grantType)) {
          // API keys and passwords reach no authorization server: the entry says how they are sent instead.
          const header = credentialHeader(entry, minimalParameters(entry, grantType));
          expect(header.name).toMatch(/^[A-Za-z-]+$/);
          const check = credentialCheckUrl(entry, minimalParameters(entry, grantType), {});
          if (check !== null) expect(new URL(check).protocol).toBe('https:');
          continue;
        }
        expect(entry.credential).toBeNull();
        const resolved = resolveEndpoints(entry, minimalParameters(entry, grantType));
        const configured = resolved.discoveryUrl !== null;
        if (grantType === 'AUTHORIZATION_CODE') expect(configured || resolved.authorizationUrl !== null).toBe(true);
        expect(configured || resolved.tokenUrl !== null).toBe(true);
        for (const url of Object.values(resolved)) if (url !== null) expect(new URL(url).protocol).toBe('https:');
      }
    });

    it('has consistent quirks', () => {
      const q = entry.quirks;
      expect([' ', ',']).toContain(q.scopeSeparator);
      expect(['S256', 'none']).toContain(q.pkce);
      expect(['client_secret_basic', 'client_secret_post']).toContain(q.clientAuth);
      // Either tokens never expire, or there is a lifetime to assume when expires_in is missing.
      expect(q.defaultTokenLifetimeSeconds === null).toBe(q.tokensNeverExpire);
      // OpenID Connect entries are configured by discovery and know their issuer.
      expect(entry.endpoints.discovery !== null).toBe(q.openIdConnect);
      if (q.openIdConnect) expect(entry.endpoints.issuer).not.toBeNull();
      if (q.publicClientAllowed) expect(q.pkce).toBe('S256');
      for (const s of [...entry.defaultScopes, ...q.authorizationCodeScopes]) {
        expect(s).not.toMatch(/\s/);
        expect(s).not.toContain(q.scopeSeparator);
      }
    });
  });

  it('carries the well-known quirks as data', () => {
    const entra = entryOf('entra');
    expect(entra.grantTypes).toEqual(['AUTHORIZATION_CODE', 'CLIENT_CREDENTIALS']);
    expect(entra.parameters.find((p) => p.name === 'tenantId')).toMatchObject({ required: true, default: null });
    expect(entra.parameters.find((p) => p.name === 'resourceUri')).toMatchObject({ required: false });
    expect(entra.quirks.clientCredentialsScopes).toEqual(['{resourceUri}/.default']);

    expect(entryOf('google').quirks.extraAuthorizationParams).toEqual({ access_type: 'offline', prompt: 'consent' });

    const github = entryOf('github').quirks;
    expect(entryOf('github').grantTypes).toEqual(['AUTHORIZATION_CODE']);
    expect(github).toMatchObject({ tokensNeverExpire: true, tokenRequestAccept: 'application/json' });

    expect(entryOf('slack').quirks).toMatchObject({
      scopeSeparator: ',',
      tokenResponsePath: 'authed_user',
      scopeParameter: 'user_scope',
    });
    expect(entryOf('salesforce').quirks.keepResponseFields).toEqual(expect.arrayContaining(['instance_url', 'id']));

    expect(entryOf('atlassian').quirks.extraAuthorizationParams).toEqual({
      audience: 'api.atlassian.com',
      prompt: 'consent',
    });
    expect(entryOf('dropbox').quirks.extraAuthorizationParams).toEqual({ token_access_type: 'offline' });
    expect(entryOf('notion').quirks).toMatchObject({
      clientAuth: 'client_secret_basic',
      extraAuthorizationParams: { owner: 'user' },
    });
    expect(entryOf('zoom').quirks.clientAuth).toBe('client_secret_basic');
    for (const name of ['box', 'gitlab', 'atlassian', 'zoom'])
      expect(entryOf(name).quirks.rotatesRefreshTokens).toBe(true);
    expect(entryOf('oauth2').quirks.pkce).toBe('none');
    expect(entryOf('oauth2pkce').quirks).toMatchObject({ pkce: 'S256', publicClientAllowed: true });
    expect(entryOf('oidc').quirks.openIdConnect).toBe(true);
  });

  it('has no connection-level parameters yet', () => {
    for (const entry of IDENTITY_PROVIDERS) expect(connectionParameterSpecs(entry)).toEqual([]);
  });
});

describe('validateProviderInput', () => {
  it('returns a frozen, normalized provider with defaults applied', () => {
    const valid = validateProviderInput(ENTRA);
    expect(valid).toEqual({
      id: 'entra-01',
      displayName: 'entra-01',
      identityProvider: 'entra',
      grantType: 'AUTHORIZATION_CODE',
      clientId: ENTRA.clientId,
      clientSecret: 'entra-client-secret-value',
      scopes: ['User.Read'],
      parameters: { tenantId: 'contoso.onmicrosoft.com', resourceUri: 'https://graph.microsoft.com' },
    });
    expect(Object.isFrozen(valid)).toBe(true);
    expect(Object.isFrozen(valid.parameters)).toBe(true);
    expect(Object.isFrozen(valid.scopes)).toBe(true);
  });

  it('applies defaults of every kind: string, bool, grant-specific', () => {
    expect(
      validateProviderInput(
        with_(ENTRA, { id: 'okta', identityProvider: 'okta', parameters: { domain: 'acme.okta.com' } }),
      ).parameters,
    ).toEqual({
      domain: 'acme.okta.com',
      authorizationServerId: 'default',
    });
    expect(validateProviderInput(with_(ENTRA, { identityProvider: 'google', parameters: null })).parameters).toEqual({
      includeGrantedScopes: 'false',
    });
    const box = { identityProvider: 'box', grantType: 'CLIENT_CREDENTIALS' };
    expect(validateProviderInput(with_(ENTRA, { ...box, parameters: { boxSubjectId: '12345' } })).parameters).toEqual({
      boxSubjectType: 'enterprise',
      boxSubjectId: '12345',
    });
    expect(
      validateProviderInput(with_(ENTRA, { identityProvider: 'box', grantType: 'AUTHORIZATION_CODE', parameters: {} }))
        .parameters,
    ).toEqual({});
  });

  it("defaults the grant type to the entry's first one and keeps an explicit display name", () => {
    const valid = validateProviderInput(with_(ENTRA, { grantType: null, displayName: 'Contoso Graph' }));
    expect(valid.grantType).toBe('AUTHORIZATION_CODE');
    expect(valid.displayName).toBe('Contoso Graph');
  });

  it('accepts parameters as a {name, value} list, the same as a map', () => {
    const list = validateProviderInput(
      with_(ENTRA, { parameters: [{ name: 'tenantId', value: 'contoso.onmicrosoft.com' }] }),
    );
    expect(list).toEqual(validateProviderInput(ENTRA));
  });

  it('treats an empty parameter value as unset', () => {
    const valid = validateProviderInput(with_(ENTRA, { parameters: { tenantId: 'common', resourceUri: '' } }));
    expect(valid.parameters['resourceUri']).toBe('https://graph.microsoft.com');
    expectBadInput(
      () => validateProviderInput(with_(ENTRA, { parameters: { tenantId: '' } })),
      'input.parameters.tenantId',
      'is required by identity provider entra',
    );
  });

  describe('identity provider and grant type', () => {
    it('refuses an unknown or missing identity provider, listing the catalog', () => {
      const message = `must be one of ${IDENTITY_PROVIDER_NAMES.join(', ')}`;
      expect(message.startsWith('must be one of oauth2, oauth2pkce, oidc, entra')).toBe(true);
      expectBadInput(
        () => validateProviderInput(with_(ENTRA, { identityProvider: 'myspace' })),
        'input.identityProvider',
        message,
      );
      expectBadInput(
        () => validateProviderInput(with_(ENTRA, { identityProvider: undefined })),
        'input.identityProvider',
        message,
      );
      expectBadInput(
        () => validateProviderInput(with_(ENTRA, { identityProvider: 'toString' })),
        'input.identityProvider',
        message,
      );
    });

    it('refuses a grant type the entry does not support', () => {
      expectBadInput(
        () =>
          validateProviderInput(
            with_(ENTRA, { identityProvider: 'github', grantType: 'CLIENT_CREDENTIALS', parameters: {} }),
          ),
        'input.grantType',
        'CLIENT_CREDENTIALS is not supported by github',
      );
      expectBadInput(
        () =>
          validateProviderInput(with_(GENERIC, { identityProvider: 'oauth2pkce', grantType: 'CLIENT_CREDENTIALS' })),
        'input.grantType',
        'CLIENT_CREDENTIALS is not supported by oauth2pkce',
      );
    });

    it('refuses a grant type outside the closed set', () => {
      expectBadInput(
        () => validateProviderInput(with_(ENTRA, { grantType: 'IMPLICIT' })),
        'input.grantType',
        'must be one of AUTHORIZATION_CODE, CLIENT_CREDENTIALS, API_KEY, BASIC',
      );
    });
  });

  describe('ids (docs/design.md rule)', () => {
    const RULE = 'must be 1-256 characters without * # & + : < > ? / or whitespace';

    it.each([
      '',
      'a*b',
      'a#b',
      'a&b',
      'a+b',
      'a:b',
      'a<b',
      'a>b',
      'a?b',
      'a/b',
      'a b',
      'a\tb',
      'a\nb',
      'a\u00a0b',
      'a\u0000b',
      'x'.repeat(257),
    ])('refuses %j', (id) => {
      expectBadInput(() => validateProviderInput(with_(ENTRA, { id })), 'input.id', RULE);
    });

    it('accepts 256 characters, counted as characters, and the examples of docs/design.md', () => {
      expect(validateId('x'.repeat(256), 'input.id')).toBe('x'.repeat(256));
      expect(validateId('é'.repeat(256), 'input.id')).toBe('é'.repeat(256));
      expect(validateId('\u{1F600}'.repeat(256), 'input.id')).toHaveLength(512);
      expect(validateId('github-01', 'input.id')).toBe('github-01');
      expect(validateId('auth-01', 'input.id')).toBe('auth-01');
    });

    it('refuses . and .. which would vanish from token endpoint paths', () => {
      expectBadInput(() => validateId('..', 'input.id'), 'input.id', 'must not be . or ..');
      expectBadInput(() => validateId('.', 'input.id'), 'input.id', 'must not be . or ..');
    });

    it.each(['\ud800', 'ali\udc00ce', 'a\ud83d', '\ude00b'])(
      'refuses %j, which holds an unpaired surrogate (stored, it would come back as U+FFFD)',
      (id) => {
        expectBadInput(
          () => validateId(id, 'connectionId'),
          'connectionId',
          'must be well-formed Unicode (it holds an unpaired surrogate)',
        );
      },
    );

    it('refuses a 15 KB id by its length', () => {
      expectBadInput(() => validateId('x'.repeat(15_000), 'connectionId'), 'connectionId', RULE);
      expectBadInput(() => validateId('\u{1F600}'.repeat(257), 'connectionId'), 'connectionId', RULE);
    });

    it('names the field it was given, for other resources', () => {
      expectBadInput(() => validateId('a/b', 'input.policy.id'), 'input.policy.id', RULE);
      expectBadInput(() => validateId(undefined, 'connectionId'), 'connectionId', 'is required');
      expectBadInput(() => validateId(42, 'input.id'), 'input.id', 'must be a string');
    });
  });

  describe('names, client and scopes', () => {
    it('limits display names to 256 characters without control characters', () => {
      expect(validateProviderInput(with_(ENTRA, { displayName: 'd'.repeat(256) })).displayName).toHaveLength(256);
      const rule = 'must be 1-256 characters without control characters';
      expectBadInput(
        () => validateProviderInput(with_(ENTRA, { displayName: 'd'.repeat(257) })),
        'input.displayName',
        rule,
      );
      expectBadInput(() => validateProviderInput(with_(ENTRA, { displayName: '' })), 'input.displayName', rule);
      expectBadInput(() => validateProviderInput(with_(ENTRA, { displayName: 'a\u0007b' })), 'input.displayName', rule);
    });

    it('requires a client id of 1-1024 characters', () => {
      const rule = 'must be 1-1024 characters without whitespace or control characters';
      expectBadInput(
        () => validateProviderInput(with_(ENTRA, { clientId: undefined })),
        'input.clientId',
        'is required',
      );
      expectBadInput(() => validateProviderInput(with_(ENTRA, { clientId: '' })), 'input.clientId', rule);
      expectBadInput(() => validateProviderInput(with_(ENTRA, { clientId: 'c'.repeat(1025) })), 'input.clientId', rule);
      expectBadInput(() => validateProviderInput(with_(ENTRA, { clientId: 'my client' })), 'input.clientId', rule);
      expect(validateProviderInput(with_(ENTRA, { clientId: 'c'.repeat(1024) })).clientId).toHaveLength(1024);
    });

    it('requires a client secret for confidential clients, of both grant types', () => {
      for (const clientSecret of [undefined, null, '']) {
        expectBadInput(
          () => validateProviderInput(with_(ENTRA, { identityProvider: 'github', parameters: {}, clientSecret })),
          'input.clientSecret',
          'is required by identity provider github',
        );
      }
      expectBadInput(
        () => validateProviderInput(with_(ENTRA, { grantType: 'CLIENT_CREDENTIALS', clientSecret: undefined })),
        'input.clientSecret',
        'is required by identity provider entra',
      );
    });

    it('lets oauth2pkce clients be public', () => {
      const pkce = with_(GENERIC, { identityProvider: 'oauth2pkce' });
      expect(validateProviderInput(with_(pkce, { clientSecret: undefined })).clientSecret).toBeNull();
      expect(validateProviderInput(with_(pkce, { clientSecret: '' })).clientSecret).toBeNull();
      expect(validateProviderInput(pkce).clientSecret).toBe('secret');
    });

    it('limits client secrets to 4096 characters without echoing them', () => {
      expect(validateProviderInput(with_(ENTRA, { clientSecret: 's'.repeat(4096) })).clientSecret).toHaveLength(4096);
      const secret = `TopSecret-${'s'.repeat(4090)}`;
      const e = expectBadInput(
        () => validateProviderInput(with_(ENTRA, { clientSecret: secret })),
        'input.clientSecret',
        'must be at most 4096 characters',
      );
      expect(JSON.stringify({ message: e.message, details: e.details })).not.toContain('TopSecret');
    });

    it('limits scopes to 100 items without whitespace, dropping duplicates', () => {
      const hundred = Array.from({ length: 100 }, (_, i) => `scope.${i}`);
      expect(validateProviderInput(with_(ENTRA, { scopes: hundred })).scopes).toEqual(hundred);
      expect(validateProviderInput(with_(ENTRA, { scopes: ['a', 'b', 'a'] })).scopes).toEqual(['a', 'b']);
      expect(validateProviderInput(with_(ENTRA, { scopes: null })).scopes).toEqual([]);
      expectBadInput(
        () => validateProviderInput(with_(ENTRA, { scopes: [...hundred, 'x'] })),
        'input.scopes',
        'must have at most 100 items',
      );
      const rule = 'must be 1-1024 characters without whitespace or control characters';
      expectBadInput(
        () => validateProviderInput(with_(ENTRA, { scopes: ['User.Read', 'Mail.Read Mail.Send'] })),
        'input.scopes[1]',
        rule,
      );
      expectBadInput(() => validateProviderInput(with_(ENTRA, { scopes: [''] })), 'input.scopes[0]', rule);
      expectBadInput(
        () => validateProviderInput(with_(ENTRA, { scopes: 'User.Read' as unknown as string[] })),
        'input.scopes',
        'must be a list of strings',
      );
    });

    it("refuses a scope containing the entry's separator", () => {
      expectBadInput(
        () =>
          validateProviderInput(
            with_(ENTRA, { identityProvider: 'slack', parameters: {}, scopes: ['users:read,chat:write'] }),
          ),
        'input.scopes[0]',
        "must not contain ',' (the scope separator of slack)",
      );
    });
  });

  describe('parameters', () => {
    it('names a missing required parameter and its identity provider', () => {
      expectBadInput(
        () => validateProviderInput(with_(ENTRA, { parameters: {} })),
        'input.parameters.tenantId',
        'is required by identity provider entra',
      );
      expectBadInput(
        () => validateProviderInput(with_(ENTRA, { parameters: undefined }), 'args.input'),
        'args.input.parameters.tenantId',
        'is required by identity provider entra',
      );
      expectBadInput(
        () =>
          validateProviderInput(
            with_(ENTRA, { identityProvider: 'box', grantType: 'CLIENT_CREDENTIALS', parameters: {} }),
          ),
        'input.parameters.boxSubjectId',
        'is required by identity provider box with grant type CLIENT_CREDENTIALS',
      );
    });

    it('refuses unknown parameter names', () => {
      expectBadInput(
        () => validateProviderInput(with_(ENTRA, { parameters: { tenantId: 'common', tenant: 'x' } })),
        'input.parameters.tenant',
        'is not a parameter of identity provider entra (expected tenantId, resourceUri)',
      );
      expectBadInput(
        () => validateProviderInput(with_(ENTRA, { identityProvider: 'slack', parameters: { team: 'T1' } })),
        'input.parameters.team',
        'is not a parameter of identity provider slack (it takes none)',
      );
      expectBadInput(
        () =>
          validateProviderInput(with_(ENTRA, { parameters: JSON.parse('{"__proto__": "x", "tenantId": "common"}') })),
        'input.parameters',
        'must have a parameter name (letters and digits)',
      );
    });

    it('refuses a parameter of another grant type', () => {
      const cc = with_(GENERIC, { grantType: 'CLIENT_CREDENTIALS' });
      expectBadInput(
        () => validateProviderInput(cc),
        'input.parameters.authorizationUrl',
        'is not used with grant type CLIENT_CREDENTIALS',
      );
      expect(
        validateProviderInput(with_(cc, { parameters: { tokenUrl: 'https://idp.example.com/token' } })).parameters,
      ).toEqual({
        tokenUrl: 'https://idp.example.com/token',
      });
    });

    it('refuses malformed parameter lists', () => {
      expectBadInput(
        () =>
          validateProviderInput(
            with_(ENTRA, {
              parameters: [
                { name: 'tenantId', value: 'a' },
                { name: 'tenantId', value: 'b' },
              ],
            }),
          ),
        'input.parameters.tenantId',
        'is given more than once',
      );
      expectBadInput(
        () => validateProviderInput(with_(ENTRA, { parameters: ['tenantId'] as unknown as [] })),
        'input.parameters[0]',
        'must be an object with name and value',
      );
      expectBadInput(
        () => validateProviderInput(with_(ENTRA, { parameters: { tenantId: 7 } as unknown as Record<string, string> })),
        'input.parameters.tenantId',
        'must be a string',
      );
      expectBadInput(
        () => validateProviderInput(with_(ENTRA, { parameters: 'tenantId=x' as unknown as Record<string, string> })),
        'input.parameters',
        'must be a list of {name, value} or a string map',
      );
    });

    it("accepts only 'true' or 'false' for bool parameters", () => {
      const google = with_(ENTRA, { identityProvider: 'google' });
      expect(validateProviderInput(with_(google, { parameters: { includeGrantedScopes: 'true' } })).parameters).toEqual(
        {
          includeGrantedScopes: 'true',
        },
      );
      for (const value of ['yes', 'TRUE', '1']) {
        expectBadInput(
          () => validateProviderInput(with_(google, { parameters: { includeGrantedScopes: value } })),
          'input.parameters.includeGrantedScopes',
          "must be 'true' or 'false'",
        );
      }
    });

    it('requires https URLs unless insecure http is allowed', () => {
      const http = with_(GENERIC, {
        parameters: { authorizationUrl: 'https://idp.example.com/a', tokenUrl: 'http://127.0.0.1:9000/token' },
      });
      expectBadInput(() => validateProviderInput(http), 'input.parameters.tokenUrl', 'must be an https URL');
      expect(validateProviderInput(http, 'input', { allowInsecureHttp: true }).parameters['tokenUrl']).toBe(
        'http://127.0.0.1:9000/token',
      );
      const ftp = with_(GENERIC, {
        parameters: { authorizationUrl: 'ftp://idp.example.com/a', tokenUrl: 'https://x.example/t' },
      });
      expectBadInput(
        () => validateProviderInput(ftp, 'input', { allowInsecureHttp: true }),
        'input.parameters.authorizationUrl',
        'must be an http or https URL',
      );
    });

    it.each([
      ['not a url', 'must be an https URL without credentials or fragment'],
      ['idp.example.com/token', 'must be an https URL'],
      ['https://user:pass@idp.example.com/token', 'must be an https URL without credentials or fragment'],
      ['https://idp.example.com/token#frag', 'must be an https URL without credentials or fragment'],
      ['javascript:alert(1)', 'must be an https URL'],
    ])('refuses token URL %j', (tokenUrl, message) => {
      expectBadInput(
        () =>
          validateProviderInput(
            with_(GENERIC, { parameters: { authorizationUrl: 'https://idp.example.com/a', tokenUrl } }),
          ),
        'input.parameters.tokenUrl',
        message,
      );
    });

    it('refuses an issuer with a query', () => {
      expectBadInput(
        () =>
          validateProviderInput(
            with_(GENERIC, { identityProvider: 'oidc', parameters: { issuer: 'https://idp.example.com/?tenant=1' } }),
          ),
        'input.parameters.issuer',
        'must be an https URL without query or fragment',
      );
    });

    it.each([
      'evil.com/',
      'evil.com@',
      'login.salesforce.com@evil.com',
      'evil.com/x?.salesforce.com',
      'evil.com:443',
      'evil.com#',
      'evil.com\\',
      '-evil.com',
      'evil..com',
      'evil.com.',
      ' evil.com',
      'ev%69l.com',
      '\u0435vil.com',
      '',
    ])('refuses host name injection %j in instanceName and domain', (value) => {
      const host = 'must be a host name (letters, digits, dots and hyphens)';
      if (value === '') {
        // Empty means unset: the default login host applies.
        expect(
          validateProviderInput(with_(ENTRA, { identityProvider: 'salesforce', parameters: { instanceName: value } }))
            .parameters,
        ).toEqual({
          instanceName: 'login.salesforce.com',
        });
        return;
      }
      expectBadInput(
        () =>
          validateProviderInput(with_(ENTRA, { identityProvider: 'salesforce', parameters: { instanceName: value } })),
        'input.parameters.instanceName',
        host,
      );
      expectBadInput(
        () => validateProviderInput(with_(ENTRA, { identityProvider: 'okta', parameters: { domain: value } })),
        'input.parameters.domain',
        host,
      );
      expectBadInput(
        () =>
          validateProviderInput(with_(ENTRA, { identityProvider: 'servicenow', parameters: { instanceName: value } })),
        'input.parameters.instanceName',
        'must be a single host name label (letters, digits and hyphens)',
      );
    });

    it('keeps ServiceNow instances inside service-now.com and lower-cases host names', () => {
      expectBadInput(
        () =>
          validateProviderInput(
            with_(ENTRA, { identityProvider: 'servicenow', parameters: { instanceName: 'acme.evil.com' } }),
          ),
        'input.parameters.instanceName',
        'must be a single host name label (letters, digits and hyphens)',
      );
      expect(
        validateProviderInput(
          with_(ENTRA, { identityProvider: 'salesforce', parameters: { instanceName: 'Acme.My.Salesforce.com' } }),
        ).parameters,
      ).toEqual({ instanceName: 'acme.my.salesforce.com' });
    });

    it.each(['../evil', 'a/b', '..', 'a%2fb', 'a?b', 'a b'])('refuses path segment %j as Entra tenant', (tenantId) => {
      expectBadInput(
        () => validateProviderInput(with_(ENTRA, { parameters: { tenantId } })),
        'input.parameters.tenantId',
        'must be 1-256 characters of letters, digits and . _ ~ -',
      );
    });

    it('validates connection-level parameters on their own', () => {
      const entra = entryOf('entra');
      expect(
        validateParameters(entra, 'AUTHORIZATION_CODE', undefined, { path: 'input.parameters', level: 'CONNECTION' }),
      ).toEqual({});
      expectBadInput(
        () =>
          validateParameters(
            entra,
            'AUTHORIZATION_CODE',
            { tenantId: 'common' },
            { path: 'input.parameters', level: 'CONNECTION' },
          ),
        'input.parameters.tenantId',
        'is set on the provider, not here',
      );
    });
  });
});

describe('validateProviderPatch', () => {
  const current = {
    id: 'entra-01',
    identityProvider: 'entra',
    grantType: 'AUTHORIZATION_CODE' as const,
    clientId: 'app-1',
    clientSecret: null,
    parameters: { tenantId: 'contoso.onmicrosoft.com', resourceUri: 'https://graph.microsoft.com' },
  };

  it('refuses to change the identity provider, grant type or id', () => {
    expectBadInput(
      () => validateProviderPatch(current, { identityProvider: 'github' }),
      'input.identityProvider',
      'cannot be changed (it is entra); create a new provider instead',
    );
    expectBadInput(
      () => validateProviderPatch(current, { grantType: 'CLIENT_CREDENTIALS' }),
      'input.grantType',
      'cannot be changed (it is AUTHORIZATION_CODE); create a new provider instead',
    );
    expectBadInput(() => validateProviderPatch(current, { id: 'entra-02' }), 'input.id', 'cannot be changed');
  });

  it('accepts the unchanged identity provider and grant type, and an empty patch', () => {
    expect(
      validateProviderPatch(current, { identityProvider: 'entra', grantType: 'AUTHORIZATION_CODE', id: 'entra-01' }),
    ).toEqual({});
    expect(Object.isFrozen(validateProviderPatch(current, {}))).toBe(true);
  });

  it('merges parameters into the current ones and re-checks them', () => {
    expect(validateProviderPatch(current, { parameters: { resourceUri: 'https://management.azure.com' } })).toEqual({
      parameters: { tenantId: 'contoso.onmicrosoft.com', resourceUri: 'https://management.azure.com' },
    });
    expect(validateProviderPatch(current, { parameters: [{ name: 'resourceUri', value: '' }] }).parameters).toEqual(
      current.parameters,
    );
    expectBadInput(
      () => validateProviderPatch(current, { parameters: { tenantId: '' } }),
      'input.parameters.tenantId',
      'is required by identity provider entra',
    );
    expectBadInput(
      () => validateProviderPatch(current, { parameters: { tenant: 'x' } }),
      'input.parameters.tenant',
      'is not a parameter of identity provider entra (expected tenantId, resourceUri)',
    );
    expectBadInput(
      () => validateProviderPatch(current, { parameters: { tenantId: '../x' } }, 'args.input'),
      'args.input.parameters.tenantId',
      'must be 1-256 characters of letters, digits and . _ ~ -',
    );
  });

  it('validates the other fields like a creation, keeping only what changes', () => {
    expect(validateProviderPatch(current, { displayName: 'Graph', scopes: [], clientSecret: 'new-secret' })).toEqual({
      displayName: 'Graph',
      scopes: [],
      clientSecret: 'new-secret',
    });
    expectBadInput(
      () => validateProviderPatch(current, { clientId: 'a b' }),
      'input.clientId',
      'must be 1-1024 characters without whitespace or control characters',
    );
    expectBadInput(
      () => validateProviderPatch(current, { scopes: ['a b'] }),
      'input.scopes[0]',
      'must be 1-1024 characters without whitespace or control characters',
    );
  });

  it('removes a client secret only where the client may be public', () => {
    expectBadInput(
      () => validateProviderPatch(current, { clientSecret: '' }),
      'input.clientSecret',
      'is required by identity provider entra',
    );
    const pkce = {
      ...current,
      identityProvider: 'oauth2pkce',
      parameters: { authorizationUrl: 'https://i.example/a', tokenUrl: 'https://i.example/t' },
    };
    expect(validateProviderPatch(pkce, { clientSecret: '' })).toEqual({ clientSecret: null });
    expect(validateProviderPatch(pkce, { clientSecret: null })).toEqual({});
  });
});

describe('resolveEndpoints', () => {
  it('expands Entra v2 endpoints over the tenant', () => {
    expect(resolveEndpoints(entryOf('entra'), { tenantId: 'contoso.onmicrosoft.com' })).toEqual({
      authorizationUrl: 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize',
      tokenUrl: 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token',
      discoveryUrl: null,
      issuer: null,
      revocationUrl: null,
    });
  });

  it('expands Okta endpoints over domain and authorization server, with the default server', () => {
    expect(resolveEndpoints(entryOf('okta'), { domain: 'acme.okta.com' })).toEqual({
      authorizationUrl: 'https://acme.okta.com/oauth2/default/v1/authorize',
      tokenUrl: 'https://acme.okta.com/oauth2/default/v1/token',
      discoveryUrl: 'https://acme.okta.com/oauth2/default/.well-known/openid-configuration',
      issuer: 'https://acme.okta.com/oauth2/default',
      revocationUrl: null,
    });
    expect(
      resolveEndpoints(entryOf('okta'), { domain: 'acme.okta.com', authorizationServerId: 'aus1a2b3' }).tokenUrl,
    ).toBe('https://acme.okta.com/oauth2/aus1a2b3/v1/token');
  });

  it('expands Salesforce endpoints over the login host', () => {
    expect(resolveEndpoints(entryOf('salesforce'), {}).tokenUrl).toBe(
      'https://login.salesforce.com/services/oauth2/token',
    );
    expect(resolveEndpoints(entryOf('salesforce'), { instanceName: 'acme.my.salesforce.com' }).authorizationUrl).toBe(
      'https://acme.my.salesforce.com/services/oauth2/authorize',
    );
  });

  it('expands ServiceNow endpoints over the instance name', () => {
    expect(resolveEndpoints(entryOf('servicenow'), { instanceName: 'acme' })).toMatchObject({
      authorizationUrl: 'https://acme.service-now.com/oauth_auth.do',
      tokenUrl: 'https://acme.service-now.com/oauth_token.do',
    });
  });

  it('uses the URLs of a generic provider as given, null where unset', () => {
    expect(
      resolveEndpoints(entryOf('oauth2'), {
        authorizationUrl: 'https://i.example/a?x=1',
        tokenUrl: 'https://i.example/t',
      }),
    ).toEqual({
      authorizationUrl: 'https://i.example/a?x=1',
      tokenUrl: 'https://i.example/t',
      discoveryUrl: null,
      issuer: null,
      revocationUrl: null,
    });
    expect(resolveEndpoints(entryOf('oauth2'), { tokenUrl: 'https://i.example/t' }).authorizationUrl).toBeNull();
    expect(
      resolveEndpoints(entryOf('oauth2'), { tokenUrl: 'https://i.example/t', revocationUrl: 'https://i.example/r' })
        .revocationUrl,
    ).toBe('https://i.example/r');
  });

  it('names the RFC 7009 revocation endpoint of the providers that publish one', () => {
    expect(resolveEndpoints(entryOf('gitlab'), { domain: 'gitlab.example.com' }).revocationUrl).toBe(
      'https://gitlab.example.com/oauth/revoke',
    );
    expect(resolveEndpoints(entryOf('salesforce'), { instanceName: 'acme.my.salesforce.com' }).revocationUrl).toBe(
      'https://acme.my.salesforce.com/services/oauth2/revoke',
    );
    expect(resolveEndpoints(entryOf('google'), {}).revocationUrl).toBe('https://oauth2.googleapis.com/revoke');
  });

  it('derives the discovery URL from an issuer, with or without a trailing slash', () => {
    const oidc = entryOf('oidc');
    expect(resolveEndpoints(oidc, { issuer: 'https://idp.example.com/realms/x' })).toMatchObject({
      discoveryUrl: 'https://idp.example.com/realms/x/.well-known/openid-configuration',
      issuer: 'https://idp.example.com/realms/x',
    });
    expect(resolveEndpoints(oidc, { issuer: 'https://acme.auth0.com/' })).toMatchObject({
      discoveryUrl: 'https://acme.auth0.com/.well-known/openid-configuration',
      issuer: 'https://acme.auth0.com/',
    });
  });

  it('refuses stored values that would move an endpoint to another host', () => {
    const e = expectBadInput(
      () => resolveEndpoints(entryOf('salesforce'), { instanceName: 'evil.com/' }),
      'parameters.instanceName',
      'must be a host name (letters, digits, dots and hyphens)',
    );
    expect(e.code).toBe('BAD_USER_INPUT');
    expectBadInput(
      () => resolveEndpoints(entryOf('entra'), { tenantId: '../../evil.com' }),
      'parameters.tenantId',
      'must be 1-256 characters of letters, digits and . _ ~ -',
    );
  });

  it('accepts a stored http URL only when insecure http is allowed', () => {
    const parameters = { tokenUrl: 'http://127.0.0.1:9000/token' };
    expectBadInput(
      () => resolveEndpoints(entryOf('oauth2'), parameters),
      'parameters.tokenUrl',
      'must be an https URL',
    );
    expect(resolveEndpoints(entryOf('oauth2'), parameters, { allowInsecureHttp: true }).tokenUrl).toBe(
      'http://127.0.0.1:9000/token',
    );
  });
});

describe('scopes', () => {
  const entra = entryOf('entra');
  const entraParameters = { tenantId: 'common', resourceUri: 'https://graph.microsoft.com' };

  it('asks Entra client credentials for <resourceUri>/.default', () => {
    expect(
      effectiveScopes(entra, { grantType: 'CLIENT_CREDENTIALS', scopes: [], parameters: entraParameters }),
    ).toEqual(['https://graph.microsoft.com/.default']);
    expect(
      effectiveScopes(entra, {
        grantType: 'CLIENT_CREDENTIALS',
        scopes: [],
        parameters: { tenantId: 't', resourceUri: 'api://1234' },
      }),
    ).toEqual(['api://1234/.default']);
    expect(
      effectiveScopes(entra, { grantType: 'CLIENT_CREDENTIALS', scopes: [], parameters: { tenantId: 't' } }),
    ).toEqual(['https://graph.microsoft.com/.default']);
  });

  it('adds offline_access to Entra authorization code, after the given or default scopes', () => {
    expect(
      effectiveScopes(entra, { grantType: 'AUTHORIZATION_CODE', scopes: ['User.Read'], parameters: entraParameters }),
    ).toEqual(['User.Read', 'offline_access']);
    expect(
      effectiveScopes(entra, { grantType: 'AUTHORIZATION_CODE', scopes: [], parameters: entraParameters }),
    ).toEqual(['https://graph.microsoft.com/.default', 'offline_access']);
  });

  it('adds openid for OpenID Connect entries in authorization code only, without duplicates', () => {
    const google = entryOf('google');
    expect(
      effectiveScopes(google, {
        grantType: 'AUTHORIZATION_CODE',
        scopes: ['https://www.googleapis.com/auth/drive.readonly'],
        parameters: {},
      }),
    ).toEqual(['https://www.googleapis.com/auth/drive.readonly', 'openid']);
    expect(effectiveScopes(entryOf('oidc'), { grantType: 'AUTHORIZATION_CODE', scopes: [], parameters: {} })).toEqual([
      'openid',
      'profile',
      'email',
      'offline_access',
    ]);
    expect(
      effectiveScopes(entryOf('okta'), { grantType: 'CLIENT_CREDENTIALS', scopes: ['api.read'], parameters: {} }),
    ).toEqual(['api.read']);
    expect(
      effectiveScopes(entryOf('github'), { grantType: 'AUTHORIZATION_CODE', scopes: ['repo'], parameters: {} }),
    ).toEqual(['repo']);
  });

  it("joins scopes with the entry's separator", () => {
    expect(scopeString(entryOf('slack'), ['users:read', 'chat:write'])).toBe('users:read,chat:write');
    expect(scopeString(entryOf('github'), ['repo', 'read:org'])).toBe('repo read:org');
    expect(scopeString(entryOf('notion'), [])).toBe('');
  });
});

describe('extra request parameters', () => {
  it("sends the entry's fixed authorization parameters", () => {
    expect(
      extraAuthorizationParameters(entryOf('google'), { grantType: 'AUTHORIZATION_CODE', parameters: {} }),
    ).toEqual({
      access_type: 'offline',
      prompt: 'consent',
      include_granted_scopes: 'false',
    });
    expect(
      extraAuthorizationParameters(entryOf('atlassian'), { grantType: 'AUTHORIZATION_CODE', parameters: {} }),
    ).toEqual({
      audience: 'api.atlassian.com',
      prompt: 'consent',
    });
    expect(
      extraAuthorizationParameters(entryOf('notion'), { grantType: 'AUTHORIZATION_CODE', parameters: {} }),
    ).toEqual({ owner: 'user' });
    expect(extraTokenParameters(entryOf('google'), { grantType: 'AUTHORIZATION_CODE', parameters: {} })).toEqual({});
  });

  it('sends audience and resource of generic entries only when set', () => {
    const oauth2 = entryOf('oauth2');
    const parameters = {
      tokenUrl: 'https://i.example/t',
      audience: 'https://api.example.com',
      resource: 'https://api.example.com/v1',
    };
    const expected = { audience: 'https://api.example.com', resource: 'https://api.example.com/v1' };
    expect(extraTokenParameters(oauth2, { grantType: 'CLIENT_CREDENTIALS', parameters })).toEqual(expected);
    expect(extraAuthorizationParameters(oauth2, { grantType: 'AUTHORIZATION_CODE', parameters })).toEqual(expected);
    expect(
      extraTokenParameters(oauth2, {
        grantType: 'AUTHORIZATION_CODE',
        parameters: { tokenUrl: 'https://i.example/t' },
      }),
    ).toEqual({});
  });

  it('sends grant-specific parameters only with their grant type', () => {
    const box = entryOf('box');
    expect(extraTokenParameters(box, { grantType: 'CLIENT_CREDENTIALS', parameters: { boxSubjectId: '42' } })).toEqual({
      box_subject_type: 'enterprise',
      box_subject_id: '42',
    });
    expect(extraTokenParameters(box, { grantType: 'AUTHORIZATION_CODE', parameters: {} })).toEqual({});
  });
});
