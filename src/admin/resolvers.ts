/** Thin resolvers: arguments in, registry operations out; records become views field by field. */
import { GraphQLScalarType, Kind } from 'graphql';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type PageArgs } from '../domain/model.js';
import { badInput } from '../errors.js';
import {
  IDENTITY_PROVIDERS,
  findIdentityProvider,
  type IdentityProviderEntry,
  type ParameterType as CatalogParameterType,
} from '../providers/catalog.js';
import { createConnection, deleteConnection, requireConnection, updateConnection } from '../registry/connections.js';
import { createAccessPolicy, deleteAccessPolicy } from '../registry/policies.js';
import { createProvider, deleteProvider, requireProvider, updateProvider } from '../registry/providers.js';
import type { IdentityProvider, Parameter, ParameterInput, ParameterType, Resolvers } from './generated/types.js';
import { createWebhook, deleteWebhook } from '../registry/webhooks.js';
import { webhookView } from './views.js';

/** The catalog's parameter types as the schema spells them. */
const PARAMETER_TYPES: Readonly<Record<CatalogParameterType, ParameterType>> = {
  string: 'STRING',
  secret: 'SECRET',
  bool: 'BOOL',
};

const DateTime = new GraphQLScalarType<Date | null, string>({
  name: 'DateTime',
  serialize: (value) => {
    if (!(value instanceof Date)) throw new TypeError('DateTime must be a Date');
    return value.toISOString();
  },
  parseValue: (value) => {
    const d = typeof value === 'string' ? new Date(value) : null;
    if (!d || Number.isNaN(d.getTime())) throw new TypeError('DateTime must be an ISO 8601 string');
    return d;
  },
  parseLiteral: (ast) => {
    const d = ast.kind === Kind.STRING ? new Date(ast.value) : null;
    if (!d || Number.isNaN(d.getTime())) throw new TypeError('DateTime must be an ISO 8601 string');
    return d;
  },
});

function pageArgs(first: number | null | undefined, after: string | null | undefined, field: string): PageArgs {
  const n = first ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE_SIZE)
    throw badInput(field, `must be between 1 and ${MAX_PAGE_SIZE}`);
  return { first: n, after: after ?? null };
}

/** GraphQL's name/value list to a map; a name given twice is an error, not a silent overwrite. */
function parameterMap(
  list: readonly ParameterInput[] | null | undefined,
  path: string,
): Record<string, string> | undefined {
  if (list === undefined || list === null) return undefined;
  const out: Record<string, string> = {};
  list.forEach(({ name, value }, i) => {
    if (Object.hasOwn(out, name)) throw badInput(`${path}[${i}].name`, `'${name}' is given twice`);
    out[name] = value;
  });
  return out;
}

const toParameterList = (map: Readonly<Record<string, string>>): Parameter[] =>
  Object.entries(map).map(([name, value]) => ({ name, value }));

function identityProviderView(entry: IdentityProviderEntry): IdentityProvider {
  return {
    name: entry.name,
    displayName: entry.displayName,
    grantTypes: entry.grantTypes,
    parameters: entry.parameters.map((p) => ({ ...p, type: PARAMETER_TYPES[p.type] })),
    defaultScopes: entry.defaultScopes,
    docsUrl: entry.docsUrl,
    credential: entry.credential,
    quirks: {
      scopeSeparator: entry.quirks.scopeSeparator,
      pkce: entry.quirks.pkce === 'S256',
      extraAuthorizationParameters: toParameterList(entry.quirks.extraAuthorizationParams),
      tokensNeverExpire: entry.quirks.tokensNeverExpire,
      tokenResponsePath: entry.quirks.tokenResponsePath,
      keepResponseFields: entry.quirks.keepResponseFields,
      rotatesRefreshTokens: entry.quirks.rotatesRefreshTokens,
      clientAuthentication: entry.quirks.clientAuth,
      openIdConnect: entry.quirks.openIdConnect,
    },
  };
}

/** Deliveries listed at most per webhook and request. */
const MAX_DELIVERIES_PAGE = 500;

/** Typed by the schema (src/admin/generated/types.ts, `npm run codegen`): parents, arguments, results. */
export const adminResolvers: Resolvers = {
  DateTime,
  Query: {
    identityProviders: () => IDENTITY_PROVIDERS.map(identityProviderView),
    identityProvider: (_, { name }) => {
      const entry = findIdentityProvider(name);
      return entry ? identityProviderView(entry) : null;
    },
    credentialProviders: async (_, { first, after }, ctx) => {
      const page = await ctx.services.registry.store.listProviders(pageArgs(first, after, 'first'));
      for (const p of page.items) ctx.loaders.provider.prime(p.id, p);
      return page;
    },
    credentialProvider: (_, { id }, ctx) => ctx.loaders.provider.load(id),
    connection: (_, { providerId, id }, ctx) => ctx.loaders.connection.load({ providerId, connectionId: id }),
    encryptionKeys: (_, __, ctx) => ctx.services.rotation.keys(),
    keyRotation: (_, __, ctx) => ctx.services.rotation.status(),
    webhooks: async (_, __, ctx) => (await ctx.services.registry.store.listWebhooks()).map((w) => webhookView(w)),
    loginLinkPending: (_, { id }, ctx) => ctx.services.loginLinkPending(id),
  },
  Mutation: {
    createCredentialProvider: (_, { input }, ctx) =>
      createProvider(ctx.services.registry, {
        ...input,
        parameters: parameterMap(input.parameters, 'input.parameters'),
      }),
    updateCredentialProvider: (_, { id, input, expectedVersion }, ctx) =>
      updateProvider(
        ctx.services.registry,
        id,
        { ...input, parameters: parameterMap(input.parameters, 'input.parameters') },
        expectedVersion ?? null,
      ),
    deleteCredentialProvider: async (_, { id, expectedVersion }, ctx) => {
      await deleteProvider(ctx.services.registry, id, expectedVersion ?? null);
      return true;
    },
    createConnection: (_, { providerId, input }, ctx) => createConnection(ctx.services.registry, providerId, input),
    updateConnection: (_, { providerId, id, input, expectedVersion }, ctx) =>
      updateConnection(ctx.services.registry, { providerId, connectionId: id }, input, expectedVersion ?? null),
    deleteConnection: async (_, { providerId, id, expectedVersion }, ctx) => {
      await deleteConnection(ctx.services.registry, { providerId, connectionId: id }, expectedVersion ?? null);
      return true;
    },
    createAccessPolicy: async (_, { providerId, connectionId, input }, ctx) => {
      await requireProvider(ctx.services.registry, providerId);
      return createAccessPolicy(ctx.services.registry, { providerId, connectionId }, input);
    },
    deleteAccessPolicy: async (_, { providerId, connectionId, id }, ctx) => {
      await deleteAccessPolicy(ctx.services.registry, { providerId, connectionId }, id);
      return true;
    },
    createLoginLink: (_, { providerId, connectionId, postLoginRedirectUrl }, ctx) =>
      ctx.services.createLoginLink({ providerId, connectionId }, postLoginRedirectUrl),
    testConnection: async (_, { providerId, connectionId }, ctx) => {
      const key = { providerId, connectionId };
      await requireConnection(ctx.services.registry, key);
      const result = await ctx.services.testConnection(key);
      return {
        ok: result.ok,
        tested: result.tested,
        tokenExpiresAt: result.tokenExpiresAt,
        status: result.state.status,
        error: result.error,
      };
    },
    rotateEncryptionKey: (_, __, ctx) => ctx.services.rotation.rotate(),
    retireEncryptionKey: async (_, { id }, ctx) => {
      await ctx.services.rotation.retire(id);
      return true;
    },
    createWebhook: async (_, { input }, ctx) => {
      const created = await createWebhook(ctx.services.registry, input);
      return webhookView(created.webhook, created.secret);
    },
    deleteWebhook: async (_, { id }, ctx) => {
      await deleteWebhook(ctx.services.registry, id);
      return true;
    },
  },
  Webhook: {
    deliveries: (w, { status, first }, ctx) => {
      const n = first ?? DEFAULT_PAGE_SIZE;
      if (!Number.isInteger(n) || n < 1 || n > MAX_DELIVERIES_PAGE)
        throw badInput('first', `must be between 1 and ${MAX_DELIVERIES_PAGE}`);
      return ctx.services.registry.store.listWebhookDeliveries(w.id, status ?? null, n);
    },
  },
  CredentialProvider: {
    hasClientSecret: (p) => p.clientSecret !== null,
    parameters: (p) => toParameterList(p.parameters),
    redirectUrl: (_, __, ctx) => ctx.services.redirectUrl,
    connections: (p, { first, after, status }, ctx) =>
      ctx.loaders.connectionsOfProvider.load({
        providerId: p.id,
        status: status ?? null,
        ...pageArgs(first, after, 'first'),
      }),
    connectionCounts: async (p, _, ctx) => {
      const counts = await ctx.loaders.connectionCounts.load(p.id);
      return {
        connected: counts.CONNECTED,
        notConnected: counts.NOT_CONNECTED,
        error: counts.ERROR,
        total: counts.CONNECTED + counts.NOT_CONNECTED + counts.ERROR,
      };
    },
  },
  Connection: {
    status: (c) => c.state.status,
    error: (c) => (c.state.status === 'ERROR' ? c.state.error : null),
    hasClientSecret: (c) => c.clientSecret !== null,
    hasCredential: (c) => c.tokens !== null,
    accessPolicies: (c, _, ctx) => ctx.loaders.accessPolicies.load({ providerId: c.providerId, connectionId: c.id }),
  },
  AccessPolicy: {
    appIds: (p) => p.appIds,
  },
};
