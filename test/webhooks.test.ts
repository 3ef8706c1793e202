/**
 * Lifecycle webhooks (docs/lifecycle.md): events written to an outbox in the transaction of the
 * change, signed as Standard Webhooks says, retried with backoff, dead-lettered after a bounded
 * number of attempts. The receiver is a real local HTTP server that verifies signatures with the
 * `standardwebhooks` package; the identity provider is a real oidc-provider.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Envelope } from '../src/crypto/envelope.js';
import { openFileKeyring } from '../src/crypto/fileKeyring.js';
import { openTokenSet } from '../src/tokens/tokenSet.js';
import { startTestApp, type TestApp } from './support/app.js';
import { consentOverHttp, oidcProviderInput, startAuthServer, type AuthServer } from './support/authServer.js';
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from './support/webhookReceiver.js';

const ALL_EVENTS = [
  'connection.created',
  'connection.connected',
  'connection.reauthorization_required',
  'connection.deleted',
];
const CREATE_WEBHOOK = `mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { id url events secret } }`;
const CREATE_PROVIDER = `mutation($input: CreateCredentialProviderInput!) { createCredentialProvider(input: $input) { id } }`;
const DELIVERIES = `query($status: WebhookDeliveryStatus) { webhooks { id secret deliveries(status: $status) { eventId eventType status attempts lastError payload } } }`;

/** A provider whose connections need no network until consent. */
const OFFLINE_PROVIDER = {
  id: 'offline',
  identityProvider: 'oauth2',
  grantType: 'AUTHORIZATION_CODE',
  clientId: 'client',
  clientSecret: 'secret',
  scopes: ['read'],
  parameters: [
    { name: 'authorizationUrl', value: 'https://idp.example/authorize' },
    { name: 'tokenUrl', value: 'https://idp.example/token' },
  ],
};

const typeOf = (r: ReceivedWebhook): string => (JSON.parse(r.body) as { type: string }).type;

async function addWebhook(
  t: TestApp,
  receiver: WebhookReceiver,
  id: string,
  events: readonly string[] = ALL_EVENTS,
): Promise<string> {
  const created = await t.admin(CREATE_WEBHOOK, { input: { id, url: receiver.url, events } });
  expect(created.body.errors).toBeUndefined();
  const secret = created.body.data.createWebhook.secret as string;
  receiver.secret = secret;
  return secret;
}

describe('lifecycle webhooks', () => {
  let auth: AuthServer;
  let t: TestApp;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    auth = await startAuthServer({ accessTokenTtlSeconds: 60 });
    receiver = await startWebhookReceiver();
    t = await startTestApp({
      webhooks: { retryBaseMs: 100, maxAttempts: 5, pollIntervalMs: 200 },
      cache: { refreshSkewSeconds: 3600 },
    });
    expect((await t.admin(CREATE_PROVIDER, { input: oidcProviderInput('idp', auth) })).body.errors).toBeUndefined();
    expect((await t.admin(CREATE_PROVIDER, { input: OFFLINE_PROVIDER })).body.errors).toBeUndefined();
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await receiver?.close();
    await auth?.close();
  });

  it('sends every lifecycle event of a connection, signed so that an independent Standard Webhooks implementation verifies it, naming no token', async () => {
    const secret = await addWebhook(t, receiver, 'all');
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    // Shown once: never again.
    const listed = await t.admin(`{ webhooks { id secret } }`);
    expect(listed.body.data.webhooks).toEqual([{ id: 'all', secret: null }]);

    expect(
      (await t.admin(`mutation { createConnection(providerId: "idp", input: { id: "alice" }) { id } }`)).body.errors,
    ).toBeUndefined();
    const link = await t.admin(
      `mutation($r: String!) { createLoginLink(providerId: "idp", connectionId: "alice", postLoginRedirectUrl: $r) { url } }`,
      {
        r: `${t.url}/oauth/done`,
      },
    );
    const landed = await consentOverHttp(link.body.data.createLoginLink.url, { login: 'alice' });
    expect(landed.searchParams.get('status')).toBe('CONNECTED');
    const envelope = new Envelope(await openFileKeyring(join(t.dir, 'keyring.json')));
    const key = { providerId: 'idp', connectionId: 'alice' };
    const tokens = openTokenSet(envelope, key, (await t.app.store.getConnection(key))!.tokens!);
    // The provider forgets the grant: the next refresh is refused and the connection needs consent again.
    auth.revokeGrantsOf('alice');
    const tested = await t.admin(
      `mutation { testConnection(providerId: "idp", connectionId: "alice") { ok status error { code } } }`,
    );
    expect(tested.body.data.testConnection.error.code).toBe('REAUTHORIZATION_REQUIRED');
    expect(
      (await t.admin(`mutation { deleteConnection(providerId: "idp", id: "alice") }`)).body.errors,
    ).toBeUndefined();

    await receiver.waitFor((got) => new Set(got.filter((r) => r.answered === 204).map(typeOf)).size === 4);
    const accepted = receiver.accepted();
    expect(accepted.map(typeOf)).toEqual(ALL_EVENTS);
    for (const r of accepted) {
      expect(r.verified).toBe(true);
      expect(r.signature).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
      expect(r.body).not.toContain(tokens.accessToken);
      expect(r.body).not.toContain(tokens.refreshToken!);
      expect(r.body).not.toContain(secret);
    }
    expect(accepted.map((r) => JSON.parse(r.body).data)).toEqual([
      { providerId: 'idp', connectionId: 'alice', status: 'NOT_CONNECTED', error: null },
      { providerId: 'idp', connectionId: 'alice', status: 'CONNECTED', error: null },
      {
        providerId: 'idp',
        connectionId: 'alice',
        status: 'ERROR',
        error: { code: 'REAUTHORIZATION_REQUIRED', message: expect.any(String) },
      },
      { providerId: 'idp', connectionId: 'alice', status: 'DELETED', error: null },
    ]);
    // The check is real: another secret does not verify these messages.
    const other = new StandardWebhook(`whsec_${Buffer.alloc(32, 7).toString('base64')}`);
    const [first] = accepted;
    expect(() =>
      other.verify(first!.body, {
        'webhook-id': first!.id,
        'webhook-timestamp': first!.timestamp,
        'webhook-signature': first!.signature,
      }),
    ).toThrow();
    expect((await t.admin(`mutation { deleteWebhook(id: "all") }`)).body.errors).toBeUndefined();
  }, 60_000);

  it('delivers on the fourth try to a receiver that answered 500 three times, with the same webhook-id each time', async () => {
    receiver.received.length = 0;
    await addWebhook(t, receiver, 'flaky', ['connection.created']);
    receiver.failNext(3);
    expect(
      (await t.admin(`mutation { createConnection(providerId: "offline", input: { id: "flaky-1" }) { id } }`)).body
        .errors,
    ).toBeUndefined();
    await receiver.waitFor((got) => got.some((r) => r.answered === 204));
    expect(receiver.received.map((r) => r.answered)).toEqual([500, 500, 500, 204]);
    expect(new Set(receiver.received.map((r) => r.id)).size).toBe(1);
    expect(receiver.received.every((r) => r.verified)).toBe(true);
    const listed = await t.admin(DELIVERIES, { status: 'DELIVERED' });
    const flaky = listed.body.data.webhooks.find((w: { id: string }) => w.id === 'flaky');
    expect(flaky.deliveries).toMatchObject([{ eventType: 'connection.created', status: 'DELIVERED', attempts: 4 }]);
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    const counted = (outcome: string) =>
      Number(
        /\d+$/.exec(
          metrics.split('\n').find((l) => l.startsWith(`cg_webhook_deliveries_total{outcome="${outcome}"}`)) ?? '0',
        )![0],
      );
    expect(counted('retried')).toBeGreaterThanOrEqual(3);
    expect(counted('delivered')).toBeGreaterThanOrEqual(1);
    expect((await t.admin(`mutation { deleteWebhook(id: "flaky") }`)).body.errors).toBeUndefined();
  }, 60_000);

  it('dead-letters an event after webhooks.maxAttempts failed attempts, visible in the admin API', async () => {
    receiver.received.length = 0;
    await addWebhook(t, receiver, 'down', ['connection.created']);
    receiver.failAll();
    try {
      expect(
        (await t.admin(`mutation { createConnection(providerId: "offline", input: { id: "dead-1" }) { id } }`)).body
          .errors,
      ).toBeUndefined();
      await receiver.waitFor((got) => got.length >= 5);
      let dead: { deliveries: { status: string; attempts: number; lastError: string; payload: string }[] } | undefined;
      for (let i = 0; i < 100 && !(dead?.deliveries.length ?? 0); i++) {
        const listed = await t.admin(DELIVERIES, { status: 'DEAD' });
        dead = listed.body.data.webhooks.find((w: { id: string }) => w.id === 'down');
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(dead!.deliveries).toMatchObject([
        { status: 'DEAD', attempts: 5, lastError: 'the receiver answered HTTP 500' },
      ]);
      expect(JSON.parse(dead!.deliveries[0]!.payload).data).toEqual({
        providerId: 'offline',
        connectionId: 'dead-1',
        status: 'NOT_CONNECTED',
        error: null,
      });
      // No sixth attempt.
      await new Promise((r) => setTimeout(r, 500));
      expect(receiver.received).toHaveLength(5);
    } finally {
      receiver.healthy();
    }
    expect((await t.admin(`mutation { deleteWebhook(id: "down") }`)).body.errors).toBeUndefined();
  }, 60_000);

  it('refuses bad webhook input with an error naming the path, and creates nothing', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ id: 'x', url: 'ftp://127.0.0.1/h', events: ['connection.created'] }, 'input.url'],
      [{ id: 'x', url: receiver.url, events: [] }, 'input.events'],
      [{ id: 'x', url: receiver.url, events: ['connection.created', 'connection.exploded'] }, 'input.events[1]'],
      [{ id: 'bad/id', url: receiver.url, events: ['connection.created'] }, 'input.id'],
    ];
    for (const [input, path] of cases) {
      const res = await t.admin(CREATE_WEBHOOK, { input });
      expect(res.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(res.body.errors?.[0]?.message).toContain(path);
    }
    expect((await t.admin(`{ webhooks { id } }`)).body.data.webhooks).toEqual([]);
  });
});

describe('lifecycle webhooks without private networks', () => {
  let t: TestApp;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    t = await startTestApp({
      oauth: { allowPrivateNetworks: false },
      webhooks: { maxAttempts: 1, pollIntervalMs: 100 },
    });
    expect((await t.admin(CREATE_PROVIDER, { input: OFFLINE_PROVIDER })).body.errors).toBeUndefined();
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  it('never connects to a host name that resolves to a private address (checked at delivery, as for providers)', async () => {
    const url = receiver.url.replace('127.0.0.1', 'localhost');
    const created = await t.admin(CREATE_WEBHOOK, { input: { id: 'rebound', url, events: ['connection.created'] } });
    expect(created.body.errors).toBeUndefined();
    expect(
      (await t.admin(`mutation { createConnection(providerId: "offline", input: { id: "probe" }) { id } }`)).body
        .errors,
    ).toBeUndefined();
    let dead: { lastError: string }[] = [];
    for (let i = 0; i < 200 && dead.length === 0; i++) {
      dead = (await t.admin(DELIVERIES, { status: 'DEAD' })).body.data.webhooks[0].deliveries;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(dead).toMatchObject([{ lastError: 'the receiver could not be reached (PRIVATE_NETWORK_REFUSED)' }]);
    expect(receiver.received).toEqual([]);
  }, 30_000);

  it('refuses a webhook URL on a loopback or private address', async () => {
    for (const url of ['http://127.0.0.1:9/h', 'http://169.254.169.254/latest', 'http://[::1]/h']) {
      const res = await t.admin(CREATE_WEBHOOK, { input: { id: 'internal', url, events: ['connection.created'] } });
      expect(res.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(res.body.errors?.[0]?.message).toContain('input.url');
    }
  });
});
