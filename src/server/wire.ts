/**
 * The one place concrete objects are built and connected. Everything below takes its
 * dependencies as arguments; nothing reaches for a global.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/schema.js';
import { createAdminApollo } from '../admin/apollo.js';
import type { AdminContext, AdminServices } from '../admin/context.js';
import { createAdminLoaders } from '../admin/loaders.js';
import { CALLBACK_PATH, ConsentFlow, LOGIN_PATH_PREFIX } from '../consent/flow.js';
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
import { UnconsentedSweep } from '../registry/unconsentedSweep.js';
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
import { REFRESH_COMPLETION_FACTOR, TokenSource } from '../tokens/tokenSource.js';
import { createFederatedGraph, type FederatedGraph } from '../gateway/gateway.js';
import { findSubgraph, issuerlessTemplates, type SupergraphConfig } from '../gateway/supergraphConfig.js';
import { createSupergraphSource, type SupergraphSource } from '../gateway/supergraphSource.js';
import { createAuditLog } from '../observability/audit.js';
import { createGatewayMetrics, observeSupergraph } from '../observability/gatewayMetrics.js';
import { countResponses } from '../observability/http.js';
import { PROMETHEUS_CONTENT_TYPE } from '../observability/metrics.js';
import { checkReadiness } from '../observability/readiness.js';
import { countSubgraphErrors } from '../observability/subgraphErrors.js';
import { createObservedTokenEvents } from '../observability/tokenEvents.js';
import { confirmEndpoint, CONFIRM_PATH } from './confirmEndpoint.js';
import { CONSENT_DONE_PATH, CONSENT_DONE_SCRIPT_PATH, consentDonePage, consentDoneScript } from './donePage.js';
import { tokenEndpoint } from './tokenEndpoint.js';
import { apolloHandler } from './apolloHttp.js';
import { federatedGraphHandler } from './gatewayHttp.js';
import { redirect, sendJson } from './httpUtil.js';
import { createRouter, type Route } from './router.js';

export interface AppOptions {
  readonly logger?: Logger;
  readonly now?: () => Date;
  /** Told the generated admin API key once, on the first start without `admin.apiKeys`. */
  readonly onAdminKeyGenerated?: (key: string) => void;
  /** Also told of the token machinery's events, beside metrics and audit (tests and benches count them). */
  readonly tokenEvents?: TokenEvents;
  /** Runs once with the registry, before the graphs are built: the demo seeds its providers here. */
  readonly seed?: (registry: RegistryDeps) => Promise<void>;
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
/** A store that does not answer a readiness ping within this time counts as unavailable. */
const READINESS_TIMEOUT_MS = 3_000;

/** Bindings may name providers created later through the admin API: say so at start, do not fail. */
async function warnAboutUnknownProviders(store: Store, supergraph: SupergraphConfig, logger: Logger): Promise<void> {
  const bound = supergraph.subgraphs.flatMap((s) => (s.authorization ? [{ subgraph: s.name, provider: s.authorization.providerId }] : []));
  const found = await store.getProviders(bound.map((b) => b.provider));
  bound.forEach((b, i) => {
    if (found[i] === null)
      logger.warn(b, 'supergraph binding names a credential provider that does not exist yet; its fields fail with CONNECTION_NOT_FOUND until it is created');
  });
}

/** DESIGN.md "Principals are issuer-scoped": same-`sub` users of two issuers would collide. */
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

export async function startApp(config: Config, options: AppOptions = {}): Promise<App> {
  const logger = options.logger ?? createLogger(config.log.level);
  const now = options.now ?? (() => new Date());
  const refreshSkewMs = config.cache.refreshSkewSeconds * 1000;
  const metrics = createGatewayMetrics();
  const tokenEvents = teeTokenEvents(createObservedTokenEvents(metrics, createAuditLog(unredactedSibling(logger))), ...(options.tokenEvents ? [options.tokenEvents] : []));
  const store = await openStore(config.store.url, {
    onError: (err) => logger.warn({ err }, 'store session error'),
    migration: {
      issuers: config.identity.issuers.map((i) => i.issuer),
      review: (f) =>
        logger.warn(
          { migration: f.version, provider: f.providerId, connection: f.connectionId, policy: f.policyId, review: f.message },
          'store migration: an access policy needs an admin to review it',
        ),
    },
  });
  // Closed last-built-first (a stack): HTTP stops before the store goes.
  const closers: (() => Promise<void>)[] = [() => store.close()];
  try {
    const keyring = config.keys.key ? parseEnvKeyring(config.keys.key) : await openFileKeyring(config.keys.keyringFile);
    const envelope = new Envelope(keyring);
    const rotation = new KeyRotation({
      store,
      keyring,
      envelope,
      onError: (err) => logger.error({ err }, 'key rotation step failed'),
    });
    closers.unshift(() => rotation.stop());
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

    const server = createServer({ requestTimeout: 60_000, headersTimeout: 20_000, keepAliveTimeout: 5_000 });
    // Listening starts before the routes exist (the public URL needs the port): until they do, a
    // request would get no answer at all and hang, so it gets a 503 to retry (a restart under traffic).
    const starting = (_req: IncomingMessage, res: ServerResponse): void => {
      res.setHeader('retry-after', String(STARTING_RETRY_AFTER_SECONDS));
      res.setHeader('connection', 'close');
      sendJson(res, { status: 'starting', message: 'the gateway is starting; retry shortly' }, 503);
    };
    server.on('request', starting);
    closers.unshift(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    const address = await listen(server, config.server.port, config.server.host);
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;
    const publicUrl = config.server.publicUrl ?? url;

    const registry: RegistryDeps = {
      store,
      envelope,
      limits: config.limits,
      managedObjectId: config.identity.managedObjectId,
      trustedIssuers: config.identity.issuers.map((i) => i.issuer),
      allowInsecureHttp: config.oauth.allowInsecureHttp,
      allowPrivateNetworks: config.oauth.allowPrivateNetworks,
      now,
      // Through the store: every replica's token cache hears of every change.
      changes: new ChangeFeed({ store, onError: (err, change) => logger.warn({ err, ...change }, 'could not tell the other replicas of a change') }),
    };
    await options.seed?.(registry);
    const { allowInsecureHttp, allowPrivateNetworks } = config.oauth;
    const oauth = new OAuthClient({ timeoutMs: config.oauth.timeoutMs, allowInsecureHttp, allowPrivateNetworks });
    // Its own client: renewals may outlive the caller's wait (see REFRESH_COMPLETION_FACTOR).
    const renewalOAuth = new OAuthClient({ timeoutMs: config.oauth.timeoutMs * REFRESH_COMPLETION_FACTOR, allowInsecureHttp, allowPrivateNetworks });
    // A provider or connection changed or deleted (on any replica): the cached client configurations
    // it touches, which hold client secrets, go; they are rebuilt on next use if their owner still exists.
    registry.changes.subscribe((event) => {
      for (const client of [oauth, renewalOAuth]) client.forgetWhere(clientsAffectedBy(event));
    });
    const tokens = new TokenSource({
      store,
      envelope,
      oauth: renewalOAuth,
      callerTimeoutMs: config.oauth.timeoutMs,
      now,
      logger,
      refreshSkewMs,
      allowInsecureHttp: config.oauth.allowInsecureHttp,
      events: tokenEvents,
      changes: registry.changes,
    });
    // The gateway's own origin is always allowed: runtime login links come back to its done page.
    const allowedRedirectOrigins = [...new Set([...config.consent.allowedRedirectOrigins.map((o) => new URL(o).origin), new URL(publicUrl).origin])];
    const consent = new ConsentFlow({
      changes: registry.changes,
      store,
      envelope,
      oauth,
      publicUrl,
      allowedRedirectOrigins,
      stateTtlMs: config.consent.stateTtlSeconds * 1000,
      allowInsecureHttp: config.oauth.allowInsecureHttp,
      now,
      logger,
    });
    const cache = new TokenCache({ enabled: config.cache.enabled, maxEntries: config.cache.maxEntries, skewMs: refreshSkewMs, now: () => now().getTime() });
    const refresher = config.cache.proactiveRefresh
      ? new ProactiveRefresher({
          refreshSkewMs,
          renew: (key, minValidityMs) => resolver.renewInBackground(key, minValidityMs),
          onError: (err, key) => logger.info({ provider: key.providerId, connection: key.connectionId, code: asGatewayError(err).code }, 'proactive refresh stopped for this connection'),
        })
      : null;
    closers.unshift(async () => refresher?.stop());
    const resolver = new TokenResolver({
      tokens,
      registry,
      cache,
      limiter: new AcquisitionLimiter(config.limits.tokenAcquisitionsPerMinute, () => now().getTime()),
      loginLinks: consent,
      postLoginRedirectUrl: `${publicUrl}${CONSENT_DONE_PATH}`,
      logger,
      events: tokenEvents,
      refresher,
    });
    let graph: FederatedGraph | null = null;
    let supergraph: SupergraphSource | null = null;
    if (config.supergraph) {
      const source = await createSupergraphSource(config.supergraph, logger);
      supergraph = source;
      observeSupergraph(metrics, source);
      graph = createFederatedGraph({
        supergraph: source,
        resolver,
        verifier,
        managedObjectId: config.identity.managedObjectId,
        exploration: config.server.exploration,
        subgraphTimeoutMs: SUBGRAPH_TIMEOUT_MS,
        logger,
        onErrors: (errors) => countSubgraphErrors(errors, { counter: metrics.subgraphErrors, isSubgraph: (name) => findSubgraph(source.current(), name) !== undefined }),
      });
      await graph.apollo.start();
      const started = graph;
      closers.unshift(() => started.stop());
      await warnAboutUnknownProviders(store, source.current(), logger);
      warnAboutIssuerlessTemplates(source.current(), config.identity.issuers.length, logger);
    }
    const services: AdminServices = {
      registry,
      rotation,
      redirectUrl: consent.callbackUrl,
      createLoginLink: (key, postLoginRedirectUrl) => consent.createLoginLink(key, postLoginRedirectUrl),
      testConnection: (key) => tokens.test(key),
    };

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

    const routes: Route[] = [
      { methods: ['GET'], path: '/healthz', handler: async (_req, res) => sendJson(res, { status: 'ok' }) },
      {
        methods: ['GET'],
        path: '/readyz',
        handler: async (_req, res) => {
          const readiness = await checkReadiness({ store, supergraph, timeoutMs: READINESS_TIMEOUT_MS });
          if (!readiness.ready) logger.warn({ err: readiness.storeError }, 'readiness check failed');
          sendJson(res, readiness.report, readiness.ready ? 200 : 503);
        },
      },
      {
        methods: ['GET'],
        path: '/metrics',
        handler: async (_req, res) => {
          res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'cache-control': 'no-store' });
          res.end(metrics.registry.expose());
        },
      },
      { methods: ['GET', 'POST'], path: '/admin/graphql', handler: apolloHandler(adminApollo, adminContext) },
      {
        methods: ['GET'],
        path: `${LOGIN_PATH_PREFIX}:token`,
        handler: async (_req, res, url, { token }) => redirect(res, await consent.openLoginLink(token!, url.searchParams.get('redirect'))),
      },
      { methods: ['GET'], path: CONSENT_DONE_PATH, handler: consentDonePage({ publicUrl, messageOrigins: allowedRedirectOrigins }) },
      { methods: ['GET'], path: CONSENT_DONE_SCRIPT_PATH, handler: consentDoneScript },
      { methods: ['POST'], path: CONFIRM_PATH, handler: confirmEndpoint({ verifier, consent }) },
      { methods: ['GET'], path: '/tokens/:providerId/:connectionId', handler: tokenEndpoint({ verifier, resolver }) },
      ...(graph ? [{ methods: ['GET', 'POST'], path: '/graphql', handler: federatedGraphHandler(graph, metrics.graphqlOperations) }] : []),
      { methods: ['GET'], path: CALLBACK_PATH, handler: async (_req, res, url) => redirect(res, await consent.handleCallback(url.searchParams)) },
    ];
    server.on('request', createRouter(routes.map((r) => ({ ...r, handler: countResponses(r.path, metrics.httpRequests, r.handler) })), logger));
    server.off('request', starting);
    const purge = setInterval(() => {
      store.deleteExpiredConsentStates(now()).catch((err) => logger.warn({ err }, 'purging expired consent states failed'));
    }, CONSENT_STATE_PURGE_INTERVAL_MS).unref();
    closers.unshift(async () => clearInterval(purge));
    const sweep = new UnconsentedSweep({
      registry,
      ttlMs: config.limits.unconsentedConnectionTtlSeconds * 1000,
      onSwept: (keys) => logger.info({ count: keys.length }, 'deleted connections created on first use and never consented to'),
      onError: (err) => logger.warn({ err }, 'sweeping unconsented connections failed'),
    });
    sweep.start();
    closers.unshift(() => sweep.stop());
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
          for (const close of closers) await close().catch((err) => logger.warn({ err }, 'error while closing'));
        })()),
    };
  } catch (e) {
    for (const close of closers) await close().catch(() => {});
    throw e;
  }
}
