/**
 * The landing page of both graphs while exploration is on: Apollo Sandbox, embedded, pointed at the
 * page's own endpoint (not editable), no cookies sent, no Sandbox telemetry to Apollo. Sandbox loads
 * from Apollo's CDN; on a network that cannot reach it (air-gapped, offline) Apollo's page shows
 * "Apollo Sandbox cannot be loaded", and this adds what to do instead.
 */
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { escapeHtml } from '../values.js';

/** The sentence of Apollo's offline fallback (@apollo/server 5) after which the help goes. */
export const APOLLO_OFFLINE_FALLBACK = '<p>Apollo Sandbox cannot be loaded; it appears that you might be offline.</p>';
/** Marks the added help; tests look for it. */
export const OFFLINE_HELP_ID = 'offline-help';

export interface LandingPageOptions {
  /** How a caller authenticates on this graph, as a curl header, e.g. `authorization: Bearer <JWT>`. */
  readonly authHeader: string;
  /** One more line of advice (e.g. the demo app), plain text. */
  readonly alsoTry?: string;
}

function offlineHelp(options: LandingPageOptions): string {
  const curl = `curl -X POST <this page's URL> -H 'content-type: application/json' -H '${options.authHeader}' -d '{"query":"{ __typename }"}'`;
  return (
    `<div id="${OFFLINE_HELP_ID}">` +
    "<p>Apollo Sandbox is loaded from Apollo's CDN (embeddable-sandbox.cdn.apollographql.com), which this browser cannot reach. " +
    'The gateway itself works; to explore it without that CDN:</p><ul>' +
    `<li>send operations with curl: <pre>${escapeHtml(curl)}</pre></li>` +
    "<li>or point a GraphQL client installed on your machine at this page's URL (introspection is on), with the header above;</li>" +
    (options.alsoTry ? `<li>${escapeHtml(options.alsoTry)}</li>` : '') +
    '</ul></div>'
  );
}

export function explorationLandingPage<TContext extends BaseContext>(
  options: LandingPageOptions,
): ApolloServerPlugin<TContext> {
  const sandbox = ApolloServerPluginLandingPageLocalDefault({
    embed: { runTelemetry: false, endpointIsEditable: false },
    includeCookies: false,
  });
  const help = offlineHelp(options);
  return {
    async serverWillStart(context) {
      const listener = await sandbox.serverWillStart!(context as never);
      const render = listener?.renderLandingPage;
      if (!render) throw new Error('the Apollo landing page plugin rendered no page');
      return {
        async renderLandingPage() {
          const page = await render();
          return {
            html: async () => {
              const html = typeof page.html === 'string' ? page.html : await page.html();
              if (!html.includes(APOLLO_OFFLINE_FALLBACK))
                throw new Error('the Apollo landing page changed: its offline fallback was not found');
              return html.replace(APOLLO_OFFLINE_FALLBACK, APOLLO_OFFLINE_FALLBACK + help);
            },
          };
        },
      };
    },
  };
}
