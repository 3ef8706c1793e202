/**
 * The demo app's routes, registered on the gateway only when the demo runs: its page at `/demo`
 * (web/demo, see src/server/webApps.ts) and `POST /demo/session`, which mints a short-lived caller
 * JWT for one of the demo users. That endpoint is the demo's stand-in for a real sign-in: it
 * signs anyone in as alice or bob, which is the point of a demo and why it exists nowhere else.
 */
import { GatewayError } from '../errors.js';
import { readBody, sendJson } from '../server/httpUtil.js';
import type { Route } from '../server/router.js';
import { webAppRoutes } from '../server/webApps.js';

export const DEMO_SESSION_PATH = '/demo/session';
/** Short: the page keeps it in memory only, and asks again when it runs out. */
export const DEMO_SESSION_JWT_SECONDS = 15 * 60;
const MAX_SESSION_BODY_BYTES = 1024;

export interface DemoSessionSigner {
  readonly issuer: string;
  sign(sub: string, expiresInSeconds: number): Promise<string>;
}

export interface DemoSession {
  readonly user: string;
  readonly jwt: string;
  readonly issuer: string;
  /** ISO 8601. */
  readonly expiresAt: string;
}

function parseUser(text: string, users: readonly string[]): string {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new GatewayError('BAD_USER_INPUT', 'body: expected JSON {"user": "<demo user>"}');
  }
  const user = (body as { user?: unknown } | null)?.user;
  if (typeof user !== 'string' || !users.includes(user))
    throw new GatewayError('BAD_USER_INPUT', `user: expected one of ${users.join(', ')}`);
  return user;
}

export function demoWebRoutes(
  signer: DemoSessionSigner,
  users: readonly string[],
  now: () => Date = () => new Date(),
): Route[] {
  return [
    ...webAppRoutes('demo'),
    {
      methods: ['POST'],
      path: DEMO_SESSION_PATH,
      handler: async (req, res) => {
        // JSON only: a cross-site form cannot post it, and a script from another origin needs a preflight no one answers.
        if (!(req.headers['content-type'] ?? '').startsWith('application/json'))
          return sendJson(res, new GatewayError('BAD_USER_INPUT', 'content-type: expected application/json'));
        const user = parseUser(await readBody(req, MAX_SESSION_BODY_BYTES), users);
        const jwt = await signer.sign(user, DEMO_SESSION_JWT_SECONDS);
        const expiresAt = new Date(now().getTime() + DEMO_SESSION_JWT_SECONDS * 1000).toISOString();
        const session: DemoSession = { user, jwt, issuer: signer.issuer, expiresAt };
        sendJson(res, session);
      },
    },
  ];
}
