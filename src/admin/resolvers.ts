/** Thin resolvers: arguments in, registry operations out; records become views field by field. */
import { GraphQLScalarType, Kind } from 'graphql';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type AccessPolicyRecord, type ConnectionRecord, type PageArgs, type ProviderRecord } from '../domain/model.js';
import { badInput } from '../errors.js';
import { IDENTITY_PROVIDERS, findIdentityProvider, type IdentityProviderEntry } from '../providers/catalog.js';
import { createConnection, deleteConnection, requireConnection, updateConnection } from '../registry/connections.js';
import { createAccessPolicy, deleteAccessPolicy } from '../registry/policies.js';
import { createProvider, deleteProvider, requireProvider, updateProvider } from '../registry/providers.js';
import type { AdminContext } from './context.js';

interface ParameterInput {
  readonly name: string;
  readonly value: string;
}

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
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE_SIZE) throw badInput(field, `must be between 1 and ${MAX_PAGE_SIZE}`);
  return { first: n, after: after ?? null };
}

/** GraphQL's name/value list to a map; a name given twice is an error, not a silent overwrite. */
function parameterMap(list: readonly ParameterInput[] | null | undefined, path: string): Record<string, string> | undefined {
  if (list === undefined || list === null) return undefined;
  const out: Record<string, string> = {};
  list.forEach(({ name, value }, i) => {
    if (Object.hasOwn(out, name)) throw badInput(`${path}[${i}].name`, `'${name}' is given twice`);
    out[name] = value;
  });
  return out;
}

const toParameterList = (map: Readonly<Record<string, string>>): ParameterInput[] =>
  Object.entries(map).map(([name, value]) => ({ name, value }));

function identityProviderView(entry: IdentityProviderEntry) {
  return {
    name: entry.name,
    displayName: entry.displayName,
    grantTypes: entry.grantTypes,
    parameters: entry.parameters.map((p) => ({ ...p, type: p.type.toUpperCase() })),
    defaultScopes: entry.defaultScopes,
    docsUrl: entry.docsUrl,
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


type Args = Record<string, any>;

export const adminResolvers = {
  DateTime,
  Query: {
    identityProviders: () => IDENTITY_PROVIDERS.map(identityProviderView),
    identityProvider: (_: unknown, { name }: Args) => {
      const entry = findIdentityProvider(name);
      return entry ? identityProviderView(entry) : null;
    },
    credentialProviders: async (_: unknown, { first, after }: Args, ctx: AdminContext) => {
      const page = await ctx.services.registry.store.listProviders(pageArgs(first, after, 'first'));
      page.items.forEach((p) => ctx.loaders.provider.prime(p.id, p));
      return page;
    },
    credentialProvider: (_: unknown, { id }: Args, ctx: AdminContext) => ctx.loaders.provider.load(id),
    connection: (_: unknown, { providerId, id }: Args, ctx: AdminContext) =>
      ctx.loaders.connection.load({ providerId, connectionId: id }),
    encryptionKeys: (_: unknown, __: Args, ctx: AdminContext) => ctx.services.rotation.keys(),
    keyRotation: (_: unknown, __: Args, ctx: AdminContext) => ctx.services.rotation.status(),
    loginLinkPending: (_: unknown, { id }: Args, ctx: AdminContext) => ctx.services.loginLinkPending(id),
  },
  Mutation: {
    createCredentialProvider: (_: unknown, { input }: Args, ctx: AdminContext) =>
      createProvider(ctx.services.registry, { ...input, parameters: parameterMap(input.parameters, 'input.parameters') }),
    updateCredentialProvider: (_: unknown, { id, input, expectedVersion }: Args, ctx: AdminContext) =>
      updateProvider(
        ctx.services.registry,
        id,
        { ...input, parameters: parameterMap(input.parameters, 'input.parameters') },
        expectedVersion ?? null,
      ),
    deleteCredentialProvider: async (_: unknown, { id, expectedVersion }: Args, ctx: AdminContext) => {
      await deleteProvider(ctx.services.registry, id, expectedVersion ?? null);
      return true;
    },
    createConnection: (_: unknown, { providerId, input }: Args, ctx: AdminContext) =>
      createConnection(ctx.services.registry, providerId, input),
    updateConnection: (_: unknown, { providerId, id, input, expectedVersion }: Args, ctx: AdminContext) =>
      updateConnection(ctx.services.registry, { providerId, connectionId: id }, input, expectedVersion ?? null),
    deleteConnection: async (_: unknown, { providerId, id, expectedVersion }: Args, ctx: AdminContext) => {
      await deleteConnection(ctx.services.registry, { providerId, connectionId: id }, expectedVersion ?? null);
      return true;
    },
    createAccessPolicy: async (_: unknown, { providerId, connectionId, input }: Args, ctx: AdminContext) => {
      await requireProvider(ctx.services.registry, providerId);
      return createAccessPolicy(ctx.services.registry, { providerId, connectionId }, input);
    },
    deleteAccessPolicy: async (_: unknown, { providerId, connectionId, id }: Args, ctx: AdminContext) => {
      await deleteAccessPolicy(ctx.services.registry, { providerId, connectionId }, id);
      return true;
    },
    createLoginLink: (_: unknown, { providerId, connectionId, postLoginRedirectUrl }: Args, ctx: AdminContext) =>
      ctx.services.createLoginLink({ providerId, connectionId }, postLoginRedirectUrl),
    testConnection: async (_: unknown, { providerId, connectionId }: Args, ctx: AdminContext) => {
      const key = { providerId, connectionId };
      await requireConnection(ctx.services.registry, key);
      const result = await ctx.services.testConnection(key);
      return { ok: result.ok, tokenExpiresAt: result.tokenExpiresAt, status: result.state.status, error: result.error };
    },
    rotateEncryptionKey: (_: unknown, __: Args, ctx: AdminContext) => ctx.services.rotation.rotate(),
    retireEncryptionKey: async (_: unknown, { id }: Args, ctx: AdminContext) => {
      await ctx.services.rotation.retire(id);
      return true;
    },
  },
  CredentialProvider: {
    hasClientSecret: (p: ProviderRecord) => p.clientSecret !== null,
    parameters: (p: ProviderRecord) => toParameterList(p.parameters),
    redirectUrl: (_: ProviderRecord, __: Args, ctx: AdminContext) => ctx.services.redirectUrl,
    connections: (p: ProviderRecord, { first, after, status }: Args, ctx: AdminContext) =>
      ctx.loaders.connectionsOfProvider.load({ providerId: p.id, status: status ?? null, ...pageArgs(first, after, 'first') }),
    connectionCounts: async (p: ProviderRecord, _: Args, ctx: AdminContext) => {
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
    status: (c: ConnectionRecord) => c.state.status,
    error: (c: ConnectionRecord) => (c.state.status === 'ERROR' ? c.state.error : null),
    hasClientSecret: (c: ConnectionRecord) => c.clientSecret !== null,
    accessPolicies: (c: ConnectionRecord, _: Args, ctx: AdminContext) =>
      ctx.loaders.accessPolicies.load({ providerId: c.providerId, connectionId: c.id }),
  },
  AccessPolicy: {
    appIds: (p: AccessPolicyRecord) => p.appIds,
  },
};
