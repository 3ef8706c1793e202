/**
 * A small node:http OAuth 2.0 server that answers the way real providers do where they differ
 * from RFC 6749 (which oidc-provider, being correct, cannot mimic). One server, four
 * personalities under their own path prefix:
 *
 * - `github`: form-encoded token response unless `Accept: application/json`; no `expires_in`
 *   (the token never expires); comma-separated scopes; errors with HTTP 200.
 * - `slack`: the user token nested under `authed_user` next to a bot token (`token_type: bot`);
 *   refresh answers at the top level and rotates; errors as `{ok:false, error}` with HTTP 200.
 * - `google`: records the authorization parameters; refresh answers without a new refresh token;
 *   with `openid` in the scope, the code exchange also returns an RS256 ID token that carries
 *   Google's issuer (`GOOGLE_ISSUER`), the client id as audience and the request's nonce.
 * - `salesforce`: no `expires_in`, extra fields (`instance_url`, `id`, `issued_at`).
 * - `sloppy`: a generic server that writes `scope` as a JSON array (as Twitch does) and answers a
 *   refresh with `refresh_token: null` (and `id_token: null`) instead of leaving them out.
 *
 * The authorization endpoint has no UI: it redirects straight back with a code (see
 * `followAuthorizationRedirect`). Every token request is recorded with its headers, form and
 * the client authentication method it used.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPair, SignJWT } from 'jose';

export const QUIRK_PERSONALITIES = ['github', 'slack', 'google', 'salesforce', 'sloppy'] as const;
export type QuirkPersonality = (typeof QUIRK_PERSONALITIES)[number];

/** The `iss` of the `google` personality's ID tokens: Google's own, so a client keeps its catalog issuer. */
export const GOOGLE_ISSUER = 'https://accounts.google.com';

export type RecordedClientAuth = 'client_secret_basic' | 'client_secret_post' | 'none';

export interface RecordedTokenRequest {
  readonly personality: QuirkPersonality;
  readonly headers: Readonly<Record<string, string>>;
  readonly form: Readonly<Record<string, string>>;
  readonly clientAuth: RecordedClientAuth;
}

export interface RecordedAuthorization {
  readonly personality: QuirkPersonality;
  readonly params: Readonly<Record<string, string>>;
}

export interface QuirkEndpoints {
  readonly authorizationUrl: string;
  readonly tokenUrl: string;
}

export interface QuirkServer {
  readonly url: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly endpoints: Readonly<Record<QuirkPersonality, QuirkEndpoints>>;
  /** Token endpoint requests, oldest first. */
  readonly tokenRequests: readonly RecordedTokenRequest[];
  /** Authorization requests, oldest first. */
  readonly authorizations: readonly RecordedAuthorization[];
  lastAuthorization(personality: QuirkPersonality): RecordedAuthorization | undefined;
  lastTokenRequest(personality: QuirkPersonality): RecordedTokenRequest | undefined;
  close(): Promise<void>;
}

interface IssuedCode {
  readonly personality: QuirkPersonality;
  readonly redirectUri: string;
  readonly codeChallenge: string | null;
  /** The authorization request asked for `openid`: the code exchange returns an ID token (google only). */
  readonly openid: boolean;
  readonly nonce: string | null;
}

type Json = Record<string, unknown>;

interface TokenAnswer {
  readonly status: number;
  readonly body: Json;
}

const SLACK_USER_TOKEN_LIFETIME_SECONDS = 43_200;
const GOOGLE_TOKEN_LIFETIME_SECONDS = 3_599;
const ID_TOKEN_LIFETIME_SECONDS = 3_600;
const ID_TOKEN_SUBJECT = '110000000000000000001';

const token = (prefix: string): string => `${prefix}${randomBytes(12).toString('hex')}`;

function parseClientAuth(
  req: IncomingMessage,
  form: URLSearchParams,
): { auth: RecordedClientAuth; id: string | null; secret: string | null } {
  const header = req.headers.authorization;
  if (header?.startsWith('Basic ')) {
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return {
      auth: 'client_secret_basic',
      id: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' ')),
      secret: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' ')),
    };
  }
  if (form.has('client_secret'))
    return { auth: 'client_secret_post', id: form.get('client_id'), secret: form.get('client_secret') };
  return { auth: 'none', id: form.get('client_id'), secret: null };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res: ServerResponse, { status, body }: TokenAnswer): void {
  res
    .writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
    .end(JSON.stringify(body));
}

/** Follows the (UI-less) authorization endpoint's redirect and returns the callback URL it names. */
export async function followAuthorizationRedirect(authorizationUrl: string): Promise<URL> {
  const response = await fetch(authorizationUrl, { redirect: 'manual' });
  const location = response.headers.get('location');
  if (response.status !== 302 || location === null) {
    throw new Error(`authorization endpoint answered HTTP ${response.status} without a redirect`);
  }
  return new URL(location);
}

export async function startQuirkServer(): Promise<QuirkServer> {
  const clientId = 'quirk-client';
  const clientSecret = randomBytes(18).toString('base64url');
  const codes = new Map<string, IssuedCode>();
  const refreshTokens = new Map<string, QuirkPersonality>();
  const tokenRequests: RecordedTokenRequest[] = [];
  const authorizations: RecordedAuthorization[] = [];

  function authorize(personality: QuirkPersonality, url: URL, res: ServerResponse): void {
    const params = Object.fromEntries(url.searchParams);
    authorizations.push(Object.freeze({ personality, params: Object.freeze(params) }));
    const redirectUri = params['redirect_uri'];
    if (params['client_id'] !== clientId || redirectUri === undefined) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('unknown client or missing redirect_uri');
      return;
    }
    const code = token(`${personality}-code-`);
    codes.set(code, {
      personality,
      redirectUri,
      codeChallenge: params['code_challenge'] ?? null,
      openid: personality === 'google' && (params['scope'] ?? '').split(' ').includes('openid'),
      nonce: params['nonce'] ?? null,
    });
    const back = new URL(redirectUri);
    back.searchParams.set('code', code);
    if (params['state'] !== undefined) back.searchParams.set('state', params['state']);
    res.writeHead(302, { location: back.href }).end();
  }

  /** RFC 6749 error codes, in each provider's own words. */
  function refusal(personality: QuirkPersonality, kind: 'client' | 'code' | 'refresh'): TokenAnswer {
    const words: Record<QuirkPersonality, Record<typeof kind, string>> = {
      github: { client: 'incorrect_client_credentials', code: 'bad_verification_code', refresh: 'bad_refresh_token' },
      slack: { client: 'invalid_client_id', code: 'invalid_code', refresh: 'invalid_refresh_token' },
      google: { client: 'invalid_client', code: 'invalid_grant', refresh: 'invalid_grant' },
      salesforce: { client: 'invalid_client', code: 'invalid_grant', refresh: 'invalid_grant' },
      sloppy: { client: 'invalid_client', code: 'invalid_grant', refresh: 'invalid_grant' },
    };
    const error = words[personality][kind];
    if (personality === 'github') return { status: 200, body: { error, error_description: 'refused' } };
    if (personality === 'slack') return { status: 200, body: { ok: false, error } };
    return { status: kind === 'client' ? 401 : 400, body: { error } };
  }

  // Made on first use: the RSA key generation is only paid by tests that ask for an ID token.
  let signingKey: ReturnType<typeof generateKeyPair> | null = null;

  async function idTokenFor(code: IssuedCode): Promise<string> {
    signingKey ??= generateKeyPair('RS256');
    const { privateKey } = await signingKey;
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      azp: clientId,
      email: 'quirk.user@example.com',
      email_verified: true,
      ...(code.nonce === null ? {} : { nonce: code.nonce }),
    })
      .setProtectedHeader({ alg: 'RS256', kid: 'quirk-google' })
      .setIssuer(GOOGLE_ISSUER)
      .setSubject(ID_TOKEN_SUBJECT)
      .setAudience(clientId)
      .setIssuedAt(now)
      .setExpirationTime(now + ID_TOKEN_LIFETIME_SECONDS)
      .sign(privateKey);
  }

  function issue(personality: QuirkPersonality, grantType: string): Json {
    const refreshToken = (prefix: string): string => {
      const value = token(prefix);
      refreshTokens.set(value, personality);
      return value;
    };
    switch (personality) {
      case 'github':
        return { access_token: token('gho_'), token_type: 'bearer', scope: 'repo,read:user' };
      case 'slack':
        return grantType === 'refresh_token'
          ? {
              ok: true,
              access_token: token('xoxe.xoxp-'),
              token_type: 'user',
              scope: 'search:read',
              refresh_token: refreshToken('xoxe-1-'),
              expires_in: SLACK_USER_TOKEN_LIFETIME_SECONDS,
            }
          : {
              ok: true,
              app_id: 'A0QUIRK',
              access_token: token('xoxb-'),
              token_type: 'bot',
              scope: 'chat:write',
              bot_user_id: 'U0BOT',
              team: { id: 'T0TEAM', name: 'Quirk Inc' },
              authed_user: {
                id: 'U0USER',
                scope: 'search:read',
                access_token: token('xoxp-'),
                token_type: 'user',
                refresh_token: refreshToken('xoxe-1-'),
                expires_in: SLACK_USER_TOKEN_LIFETIME_SECONDS,
              },
            };
      case 'google':
        return {
          access_token: token('ya29.'),
          expires_in: GOOGLE_TOKEN_LIFETIME_SECONDS,
          scope: 'https://www.googleapis.com/auth/drive.readonly',
          token_type: 'Bearer',
          // Google's refresh keeps the refresh token valid and returns none.
          ...(grantType === 'refresh_token' ? {} : { refresh_token: refreshToken('1//') }),
        };
      case 'salesforce':
        return {
          access_token: token('00D!'),
          token_type: 'Bearer',
          instance_url: 'https://quirk.my.salesforce.com',
          id: 'https://login.salesforce.com/id/00DQUIRK/005QUIRK',
          issued_at: String(Date.now()),
          signature: randomBytes(12).toString('base64'),
          ...(grantType === 'refresh_token' ? {} : { refresh_token: refreshToken('5Aep') }),
        };
      case 'sloppy':
        return {
          access_token: token('sloppy-'),
          token_type: 'bearer',
          expires_in: GOOGLE_TOKEN_LIFETIME_SECONDS,
          scope: ['read', 'write'],
          // Keeps the refresh token valid, but says so with nulls rather than by leaving fields out.
          ...(grantType === 'refresh_token'
            ? { refresh_token: null, id_token: null }
            : { refresh_token: refreshToken('sloppy-rt-') }),
        };
    }
  }

  async function answerToken(
    personality: QuirkPersonality,
    form: URLSearchParams,
    client: ReturnType<typeof parseClientAuth>,
  ): Promise<TokenAnswer> {
    if (client.id !== clientId || client.secret !== clientSecret) return refusal(personality, 'client');
    const grantType = form.get('grant_type') ?? '';
    if (grantType === 'authorization_code') {
      const code = codes.get(form.get('code') ?? '');
      codes.delete(form.get('code') ?? '');
      const verifier = form.get('code_verifier');
      const challengeOk =
        code?.codeChallenge === null ||
        (verifier !== null && createHash('sha256').update(verifier).digest('base64url') === code?.codeChallenge);
      if (
        code === undefined ||
        code.personality !== personality ||
        code.redirectUri !== form.get('redirect_uri') ||
        !challengeOk
      ) {
        return refusal(personality, 'code');
      }
      const body = issue(personality, grantType);
      return { status: 200, body: code.openid ? { ...body, id_token: await idTokenFor(code) } : body };
    }
    if (grantType === 'refresh_token') {
      const presented = form.get('refresh_token') ?? '';
      if (refreshTokens.get(presented) !== personality) return refusal(personality, 'refresh');
      // Slack rotates; the others keep the refresh token valid.
      if (personality === 'slack') refreshTokens.delete(presented);
      return { status: 200, body: issue(personality, grantType) };
    }
    return { status: 400, body: { error: 'unsupported_grant_type' } };
  }

  async function tokenEndpoint(
    personality: QuirkPersonality,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const form = new URLSearchParams(await readBody(req));
    const client = parseClientAuth(req, form);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string') headers[name] = value;
    tokenRequests.push(
      Object.freeze({
        personality,
        headers: Object.freeze(headers),
        form: Object.freeze(Object.fromEntries(form)),
        clientAuth: client.auth,
      }),
    );
    const answer = await answerToken(personality, form, client);
    const wantsJson = (req.headers.accept ?? '').includes('application/json');
    if (personality === 'github' && !wantsJson) {
      const encoded = new URLSearchParams(
        Object.entries(answer.body).map(([k, v]): [string, string] => [k, String(v)]),
      );
      res
        .writeHead(answer.status, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' })
        .end(encoded.toString());
      return;
    }
    sendJson(res, answer);
  }

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const [, personality, endpoint] = url.pathname.split('/');
    if (!QUIRK_PERSONALITIES.includes(personality as QuirkPersonality)) {
      res.writeHead(404).end();
      return;
    }
    const who = personality as QuirkPersonality;
    if (endpoint === 'authorize' && req.method === 'GET') return authorize(who, url, res);
    if (endpoint === 'token' && req.method === 'POST') {
      tokenEndpoint(who, req, res).catch(() => res.writeHead(500).end());
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const endpoints = Object.fromEntries(
    QUIRK_PERSONALITIES.map((p) => [
      p,
      Object.freeze({ authorizationUrl: `${base}/${p}/authorize`, tokenUrl: `${base}/${p}/token` }),
    ]),
  ) as Record<QuirkPersonality, QuirkEndpoints>;

  return {
    url: base,
    clientId,
    clientSecret,
    endpoints: Object.freeze(endpoints),
    tokenRequests,
    authorizations,
    lastAuthorization: (personality) => authorizations.filter((a) => a.personality === personality).at(-1),
    lastTokenRequest: (personality) => tokenRequests.filter((r) => r.personality === personality).at(-1),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
