/** What `npm start` prints once the demo is up: where to click, what to send, what to expect. */
import { CALLER_JWT_LIFETIME_SECONDS, LOGIN_LINK_TTL_SECONDS, type Demo } from './demo.js';

const SECONDS_PER_MINUTE = 60;
const SECONDS_PER_HOUR = 3600;

export function demoBanner(demo: Demo): string {
  const pad = (s: string, n: number) => s.padEnd(n);
  const width =
    Math.max(...demo.subgraphs.map((s) => s.providerId.length), ...demo.users.map((u) => u.login.length)) + 2;
  const body = JSON.stringify({ query: demo.exampleQuery });
  const connected = demo.connectedUser;
  return [
    '',
    'Credential gateway demo (local test identities only; nothing here is fit for production)',
    '',
    `  Demo app (start here)      ${demo.app.publicUrl}/demo   (sign in as alice or bob, run the query, consent in a popup)`,
    `  Sandbox (federated graph)  ${demo.sandboxUrl}`,
    `  Admin API                  ${demo.adminUrl}   (header x-api-key: the key printed on the first start)`,
    ...demo.subgraphs.map(
      (s) =>
        `  ${pad(s.authServer.displayName, 26)} ${s.authServer.issuer}   provider ${s.providerId}, subgraph ${s.url}`,
    ),
    '',
    `1. Connect ${connected}: open each link, sign in as ${connected} (any password), Allow.`,
    `   Single use, valid ${LOGIN_LINK_TTL_SECONDS / SECONDS_PER_MINUTE} minutes; every start prints new ones.`,
    ...demo.subgraphs.map((s) => `   ${pad(s.providerId, width)}${s.loginLink}`),
    '',
    `2. Caller JWTs: test identities minted by the demo issuer ${demo.callerIssuer}, valid ${CALLER_JWT_LIFETIME_SECONDS / SECONDS_PER_HOUR} h, new on every start.`,
    ...demo.users.map((u) => `   ${pad(u.login, width)}${u.jwt}`),
    '',
    `3. Open Sandbox, add the header   Authorization: Bearer <${connected}'s JWT>   and run:`,
    `   ${demo.exampleQuery}`,
    '   or with curl:',
    `   curl -s ${demo.sandboxUrl} -H 'content-type: application/json' -H "authorization: Bearer $JWT" -d '${body}'`,
    '',
    `   Each subgraph is called with ${connected}'s token from its own provider. With another user's JWT, the`,
    "   fields fail with CONNECTION_NOT_CONNECTED and extensions.loginUrl, that user's own consent link.",
    '   A loginUrl is a bearer link, so its consent waits for that user to confirm it: the page it ends on',
    `   shows the curl (POST ${new URL(demo.sandboxUrl).origin}/oauth/confirm with the user's JWT).`,
    '',
    'Ctrl-C stops everything.',
    '',
  ].join('\n');
}
