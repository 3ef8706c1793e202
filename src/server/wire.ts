/**
 * The one place concrete objects are built and connected. Everything below takes its
 * dependencies as arguments; nothing reaches for a global.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { corsOriginsOf, type Config } from '../config/schema.js';
import { createAdminApollo } from '../admin/apollo.js';
import type { AdminContext, AdminServices } from '../admin/context.js';
import { createAdminLoaders } from '../admin/loaders.js';
import { ConsentFlow } from '../consent/flow.js';
import { parseEnvKeyring } from '../crypto/envKeyring.js';
import { Envelope } from '../crypto/envelope.js';
import { openFileKeyring } from '../crypto/fileKeyring.js';
import { asGatewayError } from '../errors.js';
import { AdminAuthenticator, generateApiKey, hashApiKey } from '../identity/adminAuth.js';
import { JwtVerifier } from '../identity/jwt.js';
import { KeyRotation } from '../keys/rotation.js';
import { createLogger, unredactedSibling, type Logger } from '../log.js';
import { OAuthClient } from '../oauth/client.js';
import { ChangeFeed } from '../registry/changes.js';
import type { RegistryDeps } from '../registry/deps.js';
import { createOnFirstUse } from '../registry/connections.js';
import { UnconsentedSweep } from '../registry/unconsentedSweep.js';
import { WebhookDelivery } from '../registry/webhookDelivery.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/types.js';
import type { ConnectionKey } from '../domain/ids.js';
import type { LoginLink } from '../domain/model.js';
import { TokenCache } from '../tokens/cache.js';
import { clientsAffectedBy } from '../tokens/clientConfig.js';
import { teeTokenEvents, type TokenEvents } from '../tokens/events.js';
import { ProactiveRefresher } from '../tokens/refresher.js';
import { AcquisitionLimiter } from '../tokens/rateLimiter.js';
import { TokenResolver } from '../tokens/resolver.js';
import { TokenExchanger } from '../tokens/exchange.js';
import { REFRESH_COMPLETION_FACTOR, TokenSource } from '../tokens/tokenSource.js';
import { RevocationWorker } from '../tokens/revocations.js';
import type { ApolloServerPlugin } from '@apollo/server';
import type { GatewayContext } from '../gateway/dataSource.js';
import { createFederatedGraph } from '../gateway/gateway.js';
import type { GraphOSReporting } from '../gateway/graphos.js';
import { findSubgraph, issuerlessTemplates, type SupergraphConfig } from '../gateway/supergraphConfig.js';
import { createSupergraphSource } from '../gateway/supergraphSource.js';
import { createAuditLog } from '../observability/audit.js';
import { createGatewayMetrics, observeSupergraph, type GatewayMetrics } from '../observability/gatewayMetrics.js';
import { countResponses } from '../observability/http.js';
import { startTracing } from '../observability/otel.js';
import { countSubgraphErrors } from '../observability/subgraphErrors.js';
import { createObservedTokenEvents } from '../observability/tokenEvents.js';
import { CONSENT_DONE_PATH } from './donePage.js';
import { drainOnClose } from './drain.js';
import { sendJson } from './httpUtil.js';
import { applyCors } from './cors.js';
import { createRouter, type Route } from './router.js';
import { appRoutes, type RouteParts } from './routes.js';

export interface AppOptions {
  readonly logger?: Logger;
  readonly now?: () => Date;
  /** Told the generated admin API key once, on the first start without `admin.apiKeys`. */
  readonly onAdminKeyGenerated?: (key: string) => void;
  /** Also told of the token machinery's events, beside metrics and audit (tests and benches count them). */
  readonly tokenEvents?: TokenEvents;
  /** Runs once with the registry, before the graphs are built: the demo seeds its providers here. */
  readonly seed?: (registry: RegistryDeps) => Promise<void>;
  /** More routes beside the gateway's own (the demo adds its page and its JWT minting here). */
  readonly routes?: readonly Route[];
  /**
   * Apollo Server plugins for the federated graph (the programmatic entry point, docs/plugins.md):
   * each sees every operation, since the prepared pipeline steps aside while there are any.
   */
  readonly plugins?: readonly ApolloServerPlugin<GatewayContext>[];
  /**
   * Where OpenTelemetry reads its standard OTEL_* variables (main.ts: the process environment).
   * Tracing starts only when they ask for it (src/observability/otel.ts); absent: off.
   */
  readonly telemetryEnv?: NodeJS.ProcessEnv;
  /** GraphOS reporting (main.ts reads it from APOLLO_KEY and APOLLO_GRAPH_REF); absent: off. */
  readonly graphos?: GraphOSReporting | null;
}

export interface App {
  readonly config: Config;
  readonly url: string;
  readonly publicUrl: string;
  readonly store: Store;
  readonly logger: Logger;
  readonly tokens: TokenSource;
  /** A single-use login link, as the management API's `createLoginLink`. */
  createLoginLink(key: ConnectionKey, postLoginRedirectUrl: string): Promise<LoginLink>;
  /** Runs the periodic sweep of unconsented auto-created connections now; resolves with how many it deleted. */
  sweepUnconsentedConnections(): Promise<number>;
  close(): Promise<void>;
}

const GENERATED_ADMIN_KEY_SETTING = 'admin.generatedApiKeySha256';
const SUBGRAPH_TIMEOUT_MS = 30_000;
const CONSENT_STATE_PURGE_INTERVAL_MS = 5 * 60_000;
const STARTING_RETRY_AFTER_SECONDS = 1;
/** A revocation attempt: discovery, then the refresh token and the access token. */
const REVOCATION_CALLS_PER_ATTEMPT = 3;
/** Delivered webhook events are kept this long (for the admin API), dead letters longer. */
const DELIVERED_WEBHOOK_RETENTION_MS = 7 * 24 * 3600_000;
const DEAD_WEBHOOK_RETENTION_MS = 30 * 24 * 3600_000;
/** Added to a queue claim's lease beyond its calls' timeouts. */
const LEASE_MARGIN_MS = 5_000;

/** Bindings may name providers created later through the admin API: say so at start, do not fail. */
async function warnAboutUnknownProviders(store: Store, supergraph: SupergraphConfig, logger: Logger): Promise<void> {
  const bound = supergraph.subgraphs.flatMap((s) =>
    s.authorization ? [{ subgraph: s.name, provider: s.authorization.providerId }] : [],
  );
  const found = await store.getProviders(bound.map((b) => b.provider));
  bound.forEach((b, i) => {
    if (found[i] === null)
      logger.warn(
        b,
        'supergraph binding names a credential provider that does not exist yet; its fields fail with CONNECTION_NOT_FOUND until it is created',
      );
  });
}

/** docs/trust-model.md: same-`sub` users of two issuers would collide. */
function warnAboutIssuerlessTemplates(supergraph: SupergraphConfig, issuers: number, logger: Logger): void {
  if (issuers < 2) return;
  for (const t of issuerlessTemplates(supergraph))
    logger.warn(
      { ...t, issuers },
      'connection template has no {issuer} while several issuers are trusted: users of two issuers with the same sub render the same connection id, and only its owner may use it; add {issuer} (e.g. "{issuer}.{jwt.sub}")',
    );
}

/** Configured keys, or one generated on the very first start and remembered only as a hash. */
async function adminKeyHashes(config: Config, store: Store, announce: (key: string) => void): Promise<Buffer[]> {
  if (config.admin.apiKeys.length > 0) return config.admin.apiKeys.map(hashApiKey);
  const existing = await store.getSetting(GENERATED_ADMIN_KEY_SETTING);
  if (existing) return [Buffer.from(existing, 'hex')];
  const key = generateApiKey();
  const hash = hashApiKey(key).toString('hex');
  const stored = await store.putSettingIfAbsent(GENERATED_ADMIN_KEY_SETTING, hash);
  if (stored === hash) announce(key);
  return [Buffer.from(stored, 'hex')];
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Closed last-built-first (a stack): HTTP stops before the store goes. */
type Closers = (() => Promise<void>)[];

/** Metrics, and the token events they and the audit log hear (plus the caller's, if any). */
function buildObservability(logger: Logger, options: AppOptions) {
  const metrics = createGatewayMetrics();
  const tokenEvents = teeTokenEvents(
    createObservedTokenEvents(metrics, createAuditLog(unredactedSibling(logger))),
    ...(options.tokenEvents ? [options.tokenEvents] : []),
  );
  return { metrics, tokenEvents };
}

function openConfiguredStore(config: Config, logger: Logger): Promise<Store> {
  return openStore(config.store.url, {
    onError: (err) => logger.warn({ err }, 'store session error'),
    migration: {
      issuers: config.identity.issuers.map((i) => i.issuer),
      review: (f) =>
        logger.warn(
          {
            migration: f.version,
            provider: f.providerId,
            connection: f.connectionId,
            policy: f.policyId,
            review: f.message,
          },
          'store migration: an access policy needs an admin to review it',
        ),
    },
  });
}

/** The keyring, the envelope that seals with it, and the rotation that re-seals in the background. */
async function buildKeys(config: Config, store: Store, logger: Logger, closers: Closers) {
  const keyring = config.keys.key ? parseEnvKeyring(config.keys.key) : await openFileKeyring(config.keys.keyringFile);
  const envelope = new Envelope(keyring);
  const rotation = new KeyRotation({
    store,
    keyring,
    envelope,
    onError: (err) => logger.error({ err }, 'key rotation step failed'),
  });
  closers.unshift(() => rotation.stop());
  return { envelope, rotation };
}

/** Who a caller is: the JWT verifier for callers and admins, and the admin API's authenticator. */
async function buildIdentity(config: Config, store: Store, options: AppOptions) {
  const verifier = new JwtVerifier({
    issuers: config.identity.issuers,
    clockToleranceSeconds: config.identity.clockToleranceSeconds,
    roleClaim: config.admin.roleClaim,
    timeoutMs: config.oauth.timeoutMs,
    allowInsecureHttp: config.oauth.allowInsecureHttp,
  });
  const adminAuth = new AdminAuthenticator({
    apiKeyHashes: await adminKeyHashes(config, store, options.onAdminKeyGenerated ?? (() => {})),
    verifier,
    role: config.admin.role,
  });
  return { verifier, adminAuth };
}

/**
 * Listening starts before the routes exist (the public URL needs the port): until they do, a
 * request would get no answer at all and hang, so it gets a 503 to retry (a restart under traffic).
 * `serve` swaps the 503 for the router.
 */
async function startListening(config: Config, closers: Closers) {
  const server = createServer({ requestTimeout: 60_000, headersTimeout: 20_000, keepAliveTimeout: 5_000 });
  const starting = (req: IncomingMessage, res: ServerResponse): void => {
    // Liveness: the process is up, so a slow start (a large supergraph) is not mistaken for a hang.
    if (req.url === '/healthz') {
      sendJson(res, { status: 'starting' });
      return;
    }
    res.setHeader('retry-after', String(STARTING_RETRY_AFTER_SECONDS));
    res.setHeader('connection', 'close');
    sendJson(res, { status: 'starting', message: 'the gateway is starting; retry shortly' }, 503);
  };
  server.on('request', starting);
  // Stopping lets in-flight requests finish (bounded), so a rolling restart drops none.
  const drain = drainOnClose(server, config.server.drainTimeoutSeconds * 1000);
  closers.unshift(() => drain.close());
  const address = await listen(server, config.server.port, config.server.host);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  const serve = (listener: RequestListener): void => {
    server.on('request', listener);
    server.off('request', starting);
  };
  return { url, publicUrl: config.server.publicUrl ?? url, serve, drain };
}

/** The revocation queue's worker: retired tokens are revoked at their provider in the background. */
function buildRevocations(
  config: Config,
  store: Store,
  envelope: Envelope,
  metrics: GatewayMetrics,
  logger: Logger,
  closers: Closers,
): RevocationWorker {
  const { allowInsecureHttp, allowPrivateNetworks } = config.oauth;
  const revocations = new RevocationWorker({
    store,
    envelope,
    oauth: new OAuthClient({ timeoutMs: config.oauth.timeoutMs, allowInsecureHttp, allowPrivateNetworks }),
    allowInsecureHttp,
    // Discovery and two revocations, each within the timeout, and room to record the outcome.
    leaseMs: config.oauth.timeoutMs * REVOCATION_CALLS_PER_ATTEMPT + LEASE_MARGIN_MS,
    logger,
    onOutcome: (outcome) => metrics.revocations.inc({ outcome }),
  });
  closers.unshift(() => revocations.stop());
  return revocations;
}

/** Webhook delivery: lifecycle events sent to the registered endpoints in the background. */
function buildWebhooks(
  config: Config,
  registry: RegistryDeps,
  metrics: GatewayMetrics,
  logger: Logger,
  closers: Closers,
): WebhookDelivery {
  const webhooks = new WebhookDelivery({
    store: registry.store,
    envelope: registry.envelope,
    logger,
    allowInsecureHttp: config.oauth.allowInsecureHttp,
    allowPrivateNetworks: config.oauth.allowPrivateNetworks,
    ...config.webhooks,
    onOutcome: (outcome) => metrics.webhookDeliveries.inc({ outcome }),
  });
  closers.unshift(() => webhooks.stop());
  // Every change, on any replica, may have written events: look at once rather than at the next poll.
  registry.changes.subscribe(() => webhooks.wake());
  return webhooks;
}

function buildRegistry(
  config: Config,
  store: Store,
  envelope: Envelope,
  now: () => Date,
  logger: Logger,
  revocations: RevocationWorker,
): RegistryDeps {
  return {
    store,
    envelope,
    limits: config.limits,
    managedObjectId: config.identity.managedObjectId,
    trustedIssuers: config.identity.issuers.map((i) => i.issuer),
    allowInsecureHttp: config.oauth.allowInsecureHttp,
    allowPrivateNetworks: config.oauth.allowPrivateNetworks,
    now,
    // Through the store: every replica's token cache hears of every change.
    changes: new ChangeFeed({
      store,
      onError: (err, change) => logger.warn({ err, ...change }, 'could not tell the other replicas of a change'),
    }),
    onTokensRetired: () => revocations.wake(),
  };
}

/** The OAuth clients (one for callers, one for renewals) and the consent flow that uses the first. */
function buildOAuthAndConsent(
  config: Config,
  registry: RegistryDeps,
  publicUrl: string,
  now: () => Date,
  logger: Logger,
) {
  const { allowInsecureHttp, allowPrivateNetworks } = config.oauth;
  const oauth = new OAuthClient({ timeoutMs: config.oauth.timeoutMs, allowInsecureHttp, allowPrivateNetworks });
  // Its own client: renewals may outlive the caller's wait (see REFRESH_COMPLETION_FACTOR).
  const renewalOAuth = new OAuthClient({
    timeoutMs: config.oauth.timeoutMs * REFRESH_COMPLETION_FACTOR,
    allowInsecureHttp,
    allowPrivateNetworks,
  });
  // A provider or connection changed or deleted (on any replica): the cached client configurations
  // it touches, which hold client secrets, go; they are rebuilt on next use if their owner still exists.
  registry.changes.subscribe((event) => {
    for (const client of [oauth, renewalOAuth]) client.forgetWhere(clientsAffectedBy(event));
  });
  // The gateway's own origin is always allowed: runtime login links come back to its done page.
  const allowedRedirectOrigins = [
    ...new Set([...config.consent.allowedRedirectOrigins.map((o) => new URL(o).origin), new URL(publicUrl).origin]),
  ];
  const consent = new ConsentFlow({
    changes: registry.changes,
    store: registry.store,
    envelope: registry.envelope,
    oauth,
    publicUrl,
    allowedRedirectOrigins,
    stateTtlMs: config.consent.stateTtlSeconds * 1000,
    allowInsecureHttp: config.oauth.allowInsecureHttp,
    now,
    logger,
  });
  return { oauth, renewalOAuth, consent, allowedRedirectOrigins };
}

interface TokenParts {
  readonly config: Config;
  readonly registry: RegistryDeps;
  readonly renewalOAuth: OAuthClient;
  readonly consent: ConsentFlow;
  readonly publicUrl: string;
  readonly tokenEvents: TokenEvents;
  readonly now: () => Date;
  readonly logger: Logger;
}

/** The token machinery: the source that talks to providers, the cache, the refresher and the resolver over them. */
function buildTokens(
  { config, registry, renewalOAuth, consent, publicUrl, tokenEvents, now, logger }: TokenParts,
  closers: Closers,
) {
  const refreshSkewMs = config.cache.refreshSkewSeconds * 1000;
  const tokens = new TokenSource({
    store: registry.store,
    envelope: registry.envelope,
    oauth: renewalOAuth,
    callerTimeoutMs: config.oauth.timeoutMs,
    now,
    logger,
    refreshSkewMs,
    allowInsecureHttp: config.oauth.allowInsecureHttp,
    events: tokenEvents,
    changes: registry.changes,
  });
  const cache = new TokenCache({
    enabled: config.cache.enabled,
    maxEntries: config.cache.maxEntries,
    skewMs: refreshSkewMs,
    now: () => now().getTime(),
  });
  const refresher = config.cache.proactiveRefresh
    ? new ProactiveRefresher({
        refreshSkewMs,
        renew: (key, minValidityMs) => resolver.renewInBackground(key, minValidityMs),
        onError: (err, key) =>
          logger.info(
            { provider: key.providerId, connection: key.connectionId, code: asGatewayError(err).code },
            'proactive refresh stopped for this connection',
          ),
      })
    : null;
  closers.unshift(async () => refresher?.stop());
  const resolver = new TokenResolver({
    tokens,
    reads: registry.store,
    changes: registry.changes,
    createOnFirstUse: (key, owner, displayName) => createOnFirstUse(registry, key, owner, displayName),
    cache,
    limiter: new AcquisitionLimiter(config.limits.tokenAcquisitionsPerMinute, () => now().getTime()),
    loginLinks: consent,
    postLoginRedirectUrl: `${publicUrl}${CONSENT_DONE_PATH}`,
    logger,
    events: tokenEvents,
    refresher,
  });
  return { tokens, resolver };
}

interface GraphParts {
  readonly config: Config;
  readonly registry: RegistryDeps;
  /** The callers' OAuth client: token exchanges happen while a caller waits. */
  readonly oauth: OAuthClient;
  readonly options: AppOptions;
  readonly now: () => Date;
  readonly resolver: TokenResolver;
  readonly verifier: JwtVerifier;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
}

/** `identity: exchange` bindings: the caller's JWT exchanged (RFC 8693) for the subgraph's own audience. */
function buildExchanger({ config, registry, oauth, now }: GraphParts): TokenExchanger {
  return new TokenExchanger({
    store: registry.store,
    envelope: registry.envelope,
    oauth,
    changes: registry.changes,
    limiter: new AcquisitionLimiter(config.limits.tokenAcquisitionsPerMinute, () => now().getTime()),
    allowInsecureHttp: config.oauth.allowInsecureHttp,
    cache: {
      enabled: config.cache.enabled,
      maxEntries: config.cache.maxEntries,
      skewMs: config.cache.refreshSkewSeconds * 1000,
    },
    now: () => now().getTime(),
  });
}

/** The federated graph over the supergraph, when one is configured; both null otherwise. */
async function buildGraph(parts: GraphParts, closers: Closers) {
  const { config, registry, options, resolver, verifier, metrics, logger } = parts;
  const store = registry.store;
  if (!config.supergraph) return { graph: null, supergraph: null };
  const source = await createSupergraphSource(config.supergraph, logger);
  observeSupergraph(metrics, source);
  const graph = createFederatedGraph({
    supergraph: source,
    resolver,
    exchanger: buildExchanger(parts),
    verifier,
    managedObjectId: config.identity.managedObjectId,
    ...(options.plugins && { plugins: options.plugins }),
    graphos: options.graphos ?? null,
    exploration: config.server.exploration,
    preparedPipeline: config.server.preparedPipeline,
    subgraphTimeoutMs: SUBGRAPH_TIMEOUT_MS,
    logger,
    onErrors: (errors) =>
      countSubgraphErrors(errors, {
        counter: metrics.subgraphErrors,
        isSubgraph: (name) => findSubgraph(source.current(), name) !== undefined,
      }),
  });
  await graph.apollo.start();
  closers.unshift(() => graph.stop());
  await warnAboutUnknownProviders(store, source.current(), logger);
  warnAboutIssuerlessTemplates(source.current(), config.identity.issuers.length, logger);
  return { graph, supergraph: source };
}

/** The management API: its Apollo server and the per-request context (who is asking, and what they may drive). */
async function buildAdmin(
  config: Config,
  store: Store,
  services: AdminServices,
  adminAuth: AdminAuthenticator,
  logger: Logger,
  closers: Closers,
) {
  const adminApollo = createAdminApollo({ exploration: config.server.exploration, logger });
  await adminApollo.start();
  closers.unshift(() => adminApollo.stop());
  const adminContext = async (req: IncomingMessage): Promise<AdminContext> => {
    const base = { services, loaders: createAdminLoaders(store) };
    try {
      return { ...base, principal: await adminAuth.authenticate(req.headers), authError: null };
    } catch (e) {
      return { ...base, principal: null, authError: asGatewayError(e) };
    }
  };
  return { adminApollo, adminContext };
}

/** The background queues: revocations of retired tokens, webhook deliveries. */
interface Queues {
  readonly revocations: RevocationWorker;
  readonly webhooks: WebhookDelivery;
}

/**
 * Background chores: expired consent states and old webhook deliveries purged, unconsented
 * auto-created connections swept, the queues started.
 */
function startHousekeeping(
  config: Config,
  registry: RegistryDeps,
  queues: Queues,
  now: () => Date,
  logger: Logger,
  closers: Closers,
): UnconsentedSweep {
  const store = registry.store;
  const purge = setInterval(() => {
    store
      .deleteExpiredConsentStates(now())
      .catch((err) => logger.warn({ err }, 'purging expired consent states failed'));
    const t = now().getTime();
    store
      .purgeWebhookDeliveries(new Date(t - DELIVERED_WEBHOOK_RETENTION_MS), new Date(t - DEAD_WEBHOOK_RETENTION_MS))
      .catch((err) => logger.warn({ err }, 'purging old webhook deliveries failed'));
  }, CONSENT_STATE_PURGE_INTERVAL_MS).unref();
  closers.unshift(async () => clearInterval(purge));
  const sweep = new UnconsentedSweep({
    registry,
    ttlMs: config.limits.unconsentedConnectionTtlSeconds * 1000,
    onSwept: (keys) =>
      logger.info({ count: keys.length }, 'deleted connections created on first use and never consented to'),
    onError: (err) => logger.warn({ err }, 'sweeping unconsented connections failed'),
  });
  sweep.start();
  queues.revocations.start();
  queues.webhooks.start();
  closers.unshift(() => sweep.stop());
  return sweep;
}

/** The composition root: each step builds one part from the ones before it. */
/** The route table (server/routes.ts), behind CORS and the response counter, as the server's handler. */
function serveRoutes(
  config: Config,
  options: AppOptions,
  core: Omit<
    RouteParts,
    'adminApollo' | 'adminContext' | 'supergraph' | 'graph' | 'drain' | 'consoleEnabled' | 'extraRoutes'
  >,
  surfaces: Pick<RouteParts, 'adminApollo' | 'adminContext' | 'supergraph' | 'graph' | 'drain'>,
  serve: (listener: RequestListener) => void,
): void {
  const routes = appRoutes({
    ...core,
    ...surfaces,
    consoleEnabled: config.console.enabled,
    extraRoutes: options.routes ?? [],
  });
  const served = applyCors({ origins: corsOriginsOf(config.server) }, routes);
  const counted = served.map((r) => ({ ...r, handler: countResponses(r.path, core.metrics.httpRequests, r.handler) }));
  serve(createRouter(counted, core.logger));
}

export async function startApp(config: Config, options: AppOptions = {}): Promise<App> {
  const logger = options.logger ?? createLogger(config.log.level);
  const now = options.now ?? (() => new Date());
  // First: spans of everything below belong to it. Shut down last, after the store, so none is lost.
  const tracing = options.telemetryEnv ? await startTracing(options.telemetryEnv) : null;
  if (tracing) logger.info({ endpoint: tracing.endpoint, protocol: tracing.protocol }, 'OpenTelemetry tracing on');
  const { metrics, tokenEvents } = buildObservability(logger, options);
  const store = await openConfiguredStore(config, logger);
  const closers: Closers = [() => store.close(), async () => tracing?.shutdown()];
  try {
    const { envelope, rotation } = await buildKeys(config, store, logger, closers);
    const { verifier, adminAuth } = await buildIdentity(config, store, options);
    const { url, publicUrl, serve, drain } = await startListening(config, closers);
    const revocations = buildRevocations(config, store, envelope, metrics, logger, closers);
    const registry = buildRegistry(config, store, envelope, now, logger, revocations);
    const webhooks = buildWebhooks(config, registry, metrics, logger, closers);
    await options.seed?.(registry);
    const { oauth, renewalOAuth, consent, allowedRedirectOrigins } = buildOAuthAndConsent(
      config,
      registry,
      publicUrl,
      now,
      logger,
    );
    const { tokens, resolver } = buildTokens(
      { config, registry, renewalOAuth, consent, publicUrl, tokenEvents, now, logger },
      closers,
    );
    const { graph, supergraph } = await buildGraph(
      { config, registry, oauth, options, now, resolver, verifier, metrics, logger },
      closers,
    );
    const services: AdminServices = {
      registry,
      rotation,
      redirectUrl: consent.callbackUrl,
      createLoginLink: (key, postLoginRedirectUrl) => consent.createLoginLink(key, postLoginRedirectUrl),
      loginLinkPending: (id) => consent.loginLinkPending(id),
      testConnection: (key) => tokens.test(key),
    };
    const { adminApollo, adminContext } = await buildAdmin(config, store, services, adminAuth, logger, closers);
    serveRoutes(
      config,
      options,
      { store, logger, metrics, publicUrl, allowedRedirectOrigins, verifier, consent, resolver },
      { adminApollo, adminContext, supergraph, graph, drain },
      serve,
    );
    const sweep = startHousekeeping(config, registry, { revocations, webhooks }, now, logger, closers);
    logger.info({ url, publicUrl, store: store.dialect }, 'credential gateway listening');

    let closed: Promise<void> | null = null;
    return {
      config,
      url,
      publicUrl,
      store,
      logger,
      tokens,
      createLoginLink: (key, postLoginRedirectUrl) => consent.createLoginLink(key, postLoginRedirectUrl),
      sweepUnconsentedConnections: () => sweep.sweep(),
      close: () =>
        (closed ??= (async () => {
          // HTTP first, though built early: requests in flight still need everything built after it.
          await drain.close();
          for (const close of closers) await close().catch((err) => logger.warn({ err }, 'error while closing'));
        })()),
    };
  } catch (e) {
    for (const close of closers) await close().catch(() => {});
    throw e;
  }
}
