/**
 * Webhook delivery across processes: a gateway SIGKILLed after the change and before the delivery
 * was acknowledged delivers after restart (at least once), and two replicas sharing PostgreSQL
 * deliver a burst of events with no loss, each normally once (FOR UPDATE SKIP LOCKED + a lease).
 * Real gateway processes, a real local receiver verifying Standard Webhooks signatures.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPgSchema, requirePgOrSkip, type PgSchema } from './support/pg.js';
import { pgSchemaUrl, sharedKeysKey, startReplica, type Replica } from './support/replicas.js';
import { tempDir, type TempDir } from './support/tmp.js';
import { startWebhookReceiver, type WebhookReceiver } from './support/webhookReceiver.js';

const hasPg = await requirePgOrSkip('webhook delivery by two replicas');

const BURST_EVENTS = 200;
const BURST_CONCURRENCY = 20;
const CREATE_WEBHOOK = `mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { secret } }`;
const CREATE_PROVIDER = `mutation($input: CreateCredentialProviderInput!) { createCredentialProvider(input: $input) { id } }`;
const CREATE_CONNECTION = `mutation($id: ID!) { createConnection(providerId: "offline", input: { id: $id }) { id } }`;
const OFFLINE_PROVIDER = {
  id: 'offline',
  identityProvider: 'oauth2',
  grantType: 'AUTHORIZATION_CODE',
  clientId: 'client',
  clientSecret: 'secret',
  parameters: [
    { name: 'authorizationUrl', value: 'https://idp.example/authorize' },
    { name: 'tokenUrl', value: 'https://idp.example/token' },
  ],
};

async function ok(replica: Replica, query: string, variables: Record<string, unknown> = {}): Promise<any> {
  const res = await replica.admin(query, variables);
  if (res.body.errors) throw new Error(`${JSON.stringify(res.body.errors)}\n${replica.output()}`);
  return res.body.data;
}

async function setUp(replica: Replica, receiver: WebhookReceiver): Promise<void> {
  const created = await ok(replica, CREATE_WEBHOOK, {
    input: { id: 'hooks', url: receiver.url, events: ['connection.created'] },
  });
  receiver.secret = created.createWebhook.secret;
  await ok(replica, CREATE_PROVIDER, { input: OFFLINE_PROVIDER });
}

async function killed(pid: number): Promise<void> {
  process.kill(pid, 'SIGKILL');
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(20);
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

describe('a gateway killed between the change and the delivery', () => {
  let receiver: WebhookReceiver;
  const replicas: Replica[] = [];
  let dir: TempDir;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    dir = await tempDir('cg-webhook-crash-');
  });

  afterAll(async () => {
    for (const r of replicas) await r.stop().catch(() => undefined);
    await receiver?.close();
    await dir?.cleanup();
  });

  it('delivers the event after restart, with the same webhook-id', async () => {
    const env = {
      CG_STORE_URL: `sqlite:${dir.file('credentials.db')}`,
      CG_KEYS_KEY: sharedKeysKey(),
      CG_WEBHOOKS_TIMEOUT_MS: '1000',
      CG_WEBHOOKS_RETRY_BASE_MS: '100',
    };
    const first = await startReplica(env);
    replicas.push(first);
    await setUp(first, receiver);
    // The receiver takes the request and never answers: the delivery is not done when the gateway dies.
    receiver.hang();
    await ok(first, CREATE_CONNECTION, { id: 'before-the-kill' });
    await receiver.waitFor((got) => got.length >= 1);
    await killed(first.pid);
    receiver.healthy();
    const [hung] = receiver.received;
    expect(hung!.answered).toBeNull();

    const second = await startReplica(env);
    replicas.push(second);
    await receiver.waitFor((got) => got.some((r) => r.answered === 204), 60_000);
    const delivered = receiver.accepted();
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.id).toBe(hung!.id);
    expect(delivered[0]!.verified).toBe(true);
    expect(JSON.parse(delivered[0]!.body).data.connectionId).toBe('before-the-kill');
  }, 240_000);
});

describe.skipIf(!hasPg)('two replicas sharing PostgreSQL', () => {
  let receiver: WebhookReceiver;
  let schema: PgSchema;
  const replicas: Replica[] = [];

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    schema = await freshPgSchema('webhook_replicas');
  });

  afterAll(async () => {
    for (const r of replicas) await r.stop().catch(() => undefined);
    await receiver?.close();
    await schema?.drop();
  });

  it(`deliver a burst of ${BURST_EVENTS} events with no loss`, async () => {
    const env = { CG_STORE_URL: pgSchemaUrl(schema), CG_KEYS_KEY: sharedKeysKey() };
    const [a, b] = await Promise.all([startReplica(env), startReplica(env)]);
    replicas.push(a!, b!);
    await setUp(a!, receiver);
    const ids = Array.from({ length: BURST_EVENTS }, (_, i) => `burst-${i}`);
    for (let i = 0; i < ids.length; i += BURST_CONCURRENCY) {
      await Promise.all(
        ids.slice(i, i + BURST_CONCURRENCY).map((id, j) => ok(j % 2 === 0 ? a! : b!, CREATE_CONNECTION, { id })),
      );
    }
    await receiver.waitFor(
      (got) => new Set(got.filter((r) => r.answered === 204).map((r) => r.id)).size >= BURST_EVENTS,
      120_000,
    );
    // Anything sent twice would arrive within a lease; wait a little for stragglers before counting.
    await sleep(2_000);
    const accepted = receiver.accepted();
    const connections = new Set(accepted.map((r) => JSON.parse(r.body).data.connectionId as string));
    expect([...connections].sort()).toEqual([...ids].sort());
    expect(accepted.every((r) => r.verified)).toBe(true);
    const unique = new Set(accepted.map((r) => r.id)).size;
    const delays = accepted.map((r) => r.receivedAt - Date.parse(JSON.parse(r.body).timestamp));
    const figures = {
      events: BURST_EVENTS,
      deliveries: accepted.length,
      duplicates: accepted.length - unique,
      medianDelayMs: median(delays),
      maxDelayMs: Math.max(...delays),
    };
    console.log(`[webhook burst, two replicas on PostgreSQL] ${JSON.stringify(figures)}`);
    expect(unique).toBe(BURST_EVENTS);
    const pending = await ok(a!, `{ webhooks { deliveries(status: PENDING) { eventId } } }`);
    expect(pending.webhooks[0].deliveries).toEqual([]);
  }, 300_000);
});
