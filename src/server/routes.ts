/**
 * The gateway's route table: every path it answers, in one list. The handlers live beside it in
 * src/server; wire.ts builds the parts they need and hands them over here.
 */
import type { IncomingMessage } from 'node:http';
import type { ApolloServer } from '@apollo/server';
import type { AdminContext } from '../admin/context.js';
import { CALLBACK_PATH, LOGIN_PATH_PREFIX, type ConsentFlow } from '../consent/flow.js';
import type { JwtVerifier } from '../identity/jwt.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/types.js';
import type { TokenResolver } from '../tokens/resolver.js';
import type { FederatedGraph } from '../gateway/gateway.js';
import type { SupergraphSource } from '../gateway/supergraphSource.js';
import type { GatewayMetrics } from '../observability/gatewayMetrics.js';
import { PROMETHEUS_CONTENT_TYPE } from '../observability/metrics.js';
import { checkReadiness } from '../observability/readiness.js';
import { confirmEndpoint, CONFIRM_PATH } from './confirmEndpoint.js';
import { CONSENT_DONE_PATH, CONSENT_DONE_SCRIPT_PATH, consentDonePage, consentDoneScript } from './donePage.js';
import type { Drain } from './drain.js';
import { tokenEndpoint } from './tokenEndpoint.js';
import { apolloHandler } from './apolloHttp.js';
import { federatedGraphHandler } from './gatewayHttp.js';
import { redirect, sendJson } from './httpUtil.js';
import type { Route } from './router.js';
import { webAppRoutes, webAssetRoute } from './webApps.js';

/** A store that does not answer a readiness ping within this time counts as unavailable. */
const READINESS_TIMEOUT_MS = 3_000;

export interface RouteParts {
  readonly store: Store;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  readonly publicUrl: string;
  readonly allowedRedirectOrigins: readonly string[];
  readonly verifier: JwtVerifier;
  readonly consent: ConsentFlow;
  readonly resolver: TokenResolver;
  readonly adminApollo: ApolloServer<AdminContext>;
  readonly adminContext: (req: IncomingMessage) => Promise<AdminContext>;
  /** Null without a supergraph: no /graphql route then. */
  readonly supergraph: SupergraphSource | null;
  readonly graph: FederatedGraph | null;
  /** While stopping, /readyz says so: the load balancer sends no new requests. */
  readonly drain: Pick<Drain, 'draining'>;
  /** The admin console at /console (config `console.enabled`). */
  readonly consoleEnabled: boolean;
  /** More routes beside the gateway's own (AppOptions.routes: the demo's page and JWT minting). */
  readonly extraRoutes: readonly Route[];
}

export function appRoutes(p: RouteParts): Route[] {
  const { store, logger, metrics, consent, verifier, resolver, graph, supergraph } = p;
  return [
    { methods: ['GET'], path: '/healthz', handler: async (_req, res) => sendJson(res, { status: 'ok' }) },
    {
      methods: ['GET'],
      path: '/readyz',
      handler: async (_req, res) => {
        if (p.drain.draining) return sendJson(res, { status: 'stopping' }, 503);
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
    { methods: ['GET', 'POST'], path: '/admin/graphql', handler: apolloHandler(p.adminApollo, p.adminContext) },
    {
      methods: ['GET'],
      path: `${LOGIN_PATH_PREFIX}:token`,
      handler: async (_req, res, url, { token }) =>
        redirect(res, await consent.openLoginLink(token!, url.searchParams.get('redirect'))),
    },
    {
      methods: ['GET'],
      path: CONSENT_DONE_PATH,
      handler: consentDonePage({ publicUrl: p.publicUrl, messageOrigins: p.allowedRedirectOrigins }),
    },
    { methods: ['GET'], path: CONSENT_DONE_SCRIPT_PATH, handler: consentDoneScript },
    { methods: ['POST'], path: CONFIRM_PATH, handler: confirmEndpoint({ verifier, consent }) },
    { methods: ['GET'], path: '/tokens/:providerId/:connectionId', handler: tokenEndpoint({ verifier, resolver }) },
    ...(graph
      ? [
          {
            methods: ['GET', 'POST'],
            path: '/graphql',
            handler: federatedGraphHandler(graph, metrics.graphqlOperations),
          },
        ]
      : []),
    {
      methods: ['GET'],
      path: CALLBACK_PATH,
      handler: async (_req, res, url) => redirect(res, await consent.handleCallback(url.searchParams)),
    },
    // The browser apps' shared assets; each app's page is its own route (webAppRoutes).
    webAssetRoute(),
    ...(p.consoleEnabled ? webAppRoutes('console') : []),
    ...p.extraRoutes,
  ];
}
