/**
 * Delivery of lifecycle webhooks from the store's outbox (rows written in the transaction of the
 * change they report). Every replica runs this worker; the store hands each due row to one of them
 * (PostgreSQL: SKIP LOCKED, then a lease), so an event is normally sent once, and again only when
 * a worker died mid-delivery (at least once). Retries back off exponentially with jitter; after
 * `maxAttempts` the row is dead-lettered (status DEAD, visible in the admin API).
 *
 * Signed as the Standard Webhooks specification says: HMAC-SHA256 over `<id>.<timestamp>.<body>`
 * with the base64-decoded secret, sent as `webhook-signature: v1,<base64>`. Sent through the same
 * private-network guard as identity provider calls.
 */
import { createHmac } from 'node:crypto';
import { fetch as undiciFetch, type Dispatcher } from 'undici';
import type { Envelope } from '../crypto/envelope.js';
import type { Logger } from '../log.js';
import { createProviderDispatcher } from '../oauth/network.js';
import type { Store, WebhookDeliveryRecord, WebhookRecord } from '../store/types.js';
import { QueueLoop, backoffMs } from './queueLoop.js';
import { WEBHOOK_SECRET_PREFIX } from './webhooks.js';

const DELIVERY_BATCH_SIZE = 50;
const RETRY_MAX_MS = 60 * 60_000;
/** Added to a claim's lease beyond the request's own timeout. */
const LEASE_MARGIN_MS = 5_000;

export type DeliveryAttemptOutcome = 'delivered' | 'retried' | 'dead';

export interface WebhookDeliveryOptions {
  readonly store: Store;
  readonly envelope: Envelope;
  readonly logger: Logger;
  readonly allowInsecureHttp: boolean;
  readonly allowPrivateNetworks: boolean;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  readonly pollIntervalMs: number;
  readonly onOutcome: (outcome: DeliveryAttemptOutcome) => void;
  readonly now?: () => Date;
}

/** The Standard Webhooks signature of one message. */
export function signWebhook(secret: string, id: string, timestampSeconds: number, body: string): string {
  const key = Buffer.from(
    secret.startsWith(WEBHOOK_SECRET_PREFIX) ? secret.slice(WEBHOOK_SECRET_PREFIX.length) : secret,
    'base64',
  );
  return `v1,${createHmac('sha256', key).update(`${id}.${timestampSeconds}.${body}`).digest('base64')}`;
}

export class WebhookDelivery {
  readonly #options: WebhookDeliveryOptions;
  readonly #loop: QueueLoop;
  readonly #dispatcher: Dispatcher;
  /** Whether any webhook existed at the last look: without one, changes cost no query here. */
  #anyWebhook = true;

  constructor(options: WebhookDeliveryOptions) {
    this.#options = options;
    this.#dispatcher = createProviderDispatcher({ allowPrivateNetworks: options.allowPrivateNetworks });
    this.#loop = new QueueLoop({
      step: () => this.#step(),
      intervalMs: options.pollIntervalMs,
      onError: (err) => options.logger.warn({ err }, 'webhook delivery step failed'),
    });
  }

  start(): void {
    this.#loop.start();
  }

  /**
   * A connection changed: an event may have been recorded, so look now rather than at the next
   * poll. Nothing to do while no webhook exists (one created on another replica meanwhile is
   * seen at the next poll).
   */
  wake(): void {
    if (this.#anyWebhook) this.#loop.wake();
  }

  async stop(): Promise<void> {
    await this.#loop.stop();
    await this.#dispatcher.close().catch(() => undefined);
  }

  #now(): Date {
    return this.#options.now?.() ?? new Date();
  }

  async #step(): Promise<boolean> {
    const { store, timeoutMs } = this.#options;
    const byId = async () => new Map((await store.listWebhooks()).map((w) => [w.id, w]));
    let webhooks = await byId();
    this.#anyWebhook = webhooks.size > 0;
    if (!this.#anyWebhook) return false;
    const claimed = await store.claimWebhookDeliveries(this.#now(), DELIVERY_BATCH_SIZE, timeoutMs + LEASE_MARGIN_MS);
    if (claimed.length === 0) return false;
    // Created since the listing: read again rather than leave its delivery to the lease.
    if (claimed.some((d) => !webhooks.has(d.webhookId))) webhooks = await byId();
    await Promise.all(claimed.map((d) => this.#deliver(d, webhooks.get(d.webhookId))));
    return claimed.length === DELIVERY_BATCH_SIZE;
  }

  async #deliver(delivery: WebhookDeliveryRecord, webhook: WebhookRecord | undefined): Promise<void> {
    // Deleted meanwhile: its deliveries went with it.
    if (webhook === undefined) return;
    const { store, logger, onOutcome } = this.#options;
    const error = await this.#send(delivery, webhook);
    const where = {
      webhook: webhook.id,
      event: delivery.eventId,
      type: delivery.eventType,
      attempt: delivery.attempts,
    };
    if (error === null) {
      await store.completeWebhookDelivery(webhook.id, delivery.eventId, { status: 'DELIVERED', at: this.#now() });
      onOutcome('delivered');
      return;
    }
    if (delivery.attempts >= this.#options.maxAttempts) {
      await store.completeWebhookDelivery(webhook.id, delivery.eventId, { status: 'DEAD', error });
      onOutcome('dead');
      logger.error({ ...where, reason: error }, 'webhook delivery failed for good; dead-lettered');
      return;
    }
    const delay = backoffMs(delivery.attempts, this.#options.retryBaseMs, RETRY_MAX_MS);
    await store.completeWebhookDelivery(webhook.id, delivery.eventId, {
      status: 'PENDING',
      nextAttemptAt: new Date(this.#now().getTime() + delay),
      error,
    });
    onOutcome('retried');
    logger.info({ ...where, reason: error, retryInMs: delay }, 'webhook delivery failed; will retry');
  }

  /** Null when the receiver took it (2xx); else why not, in words that hold no secret. */
  async #send(delivery: WebhookDeliveryRecord, webhook: WebhookRecord): Promise<string | null> {
    const { envelope, timeoutMs, allowInsecureHttp } = this.#options;
    const url = new URL(webhook.url);
    if (url.protocol !== 'https:' && !(allowInsecureHttp && url.protocol === 'http:'))
      return 'the URL must use https (oauth.allowInsecureHttp is off)';
    const secret = envelope.open(webhook.secret, { kind: 'webhook', field: 'secret', webhookId: webhook.id });
    const timestamp = Math.floor(this.#now().getTime() / 1000);
    try {
      const response = await undiciFetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': delivery.eventId,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook(secret, delivery.eventId, timestamp, delivery.payload),
        },
        body: delivery.payload,
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
        dispatcher: this.#dispatcher,
      });
      await response.body?.cancel().catch(() => undefined);
      return response.status >= 200 && response.status < 300 ? null : `the receiver answered HTTP ${response.status}`;
    } catch (e) {
      const name = e instanceof Error ? e.name : '';
      if (name === 'TimeoutError' || name === 'AbortError') return `no answer within ${timeoutMs} ms`;
      return `the receiver could not be reached (${causeCode(e)})`;
    }
  }
}

/** A network error's code (ECONNREFUSED, PRIVATE_NETWORK_REFUSED, ...), never its text. */
function causeCode(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth += 1) {
    const code = (current as Error & { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = current.cause;
  }
  return 'network error';
}
