/**
 * Changes between replicas over PostgreSQL LISTEN/NOTIFY. One dedicated session listens on a
 * channel named after the schema in use (replicas sharing a schema share a channel; other
 * schemas in the same database stay apart) and reconnects after errors. Payloads carry the
 * provider id and connection id only: never a secret.
 *
 * Changes are sent on the listening session itself, so its own notifications come back with its
 * own backend process id and are dropped: the hub has told this process's listeners already.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { ChangeTransport } from './changeHub.js';
import type { ChangeEvent, ChangeListener } from './types.js';

const CHANNEL_PREFIX = 'cg_changes_';
const RECONNECT_MIN_DELAY_MS = 100;
const RECONNECT_MAX_DELAY_MS = 5_000;
/** A session that died without a TCP reset (a dropped network) is noticed within about this long. */
const HEARTBEAT_INTERVAL_MS = 10_000;
const QUERY_TIMEOUT_MS = 5_000;
/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7_999;

export interface PgNotifyOptions {
  /** The store's connection settings (search_path included: the channel follows the schema). */
  readonly client: pg.ClientConfig;
  /** Sends a notification through the store's pool, for when the listening session is down. */
  readonly notifyViaPool: (channel: string, payload: string) => Promise<void>;
  /** Lost sessions, failed reconnects, malformed notifications. */
  readonly onError: (error: Error) => void;
}

/** The channel of a schema: identifiers are limited to 63 bytes, schema names to 63 as well. */
export function changeChannelOf(schema: string): string {
  return CHANNEL_PREFIX + createHash('sha256').update(schema).digest('hex').slice(0, 16);
}

interface Payload {
  readonly p: string;
  readonly c?: string;
}

function payloadOf(event: ChangeEvent): string {
  const precise = JSON.stringify(
    event.connectionId === undefined ? { p: event.providerId } : { p: event.providerId, c: event.connectionId },
  );
  if (Buffer.byteLength(precise) <= MAX_PAYLOAD_BYTES) return precise;
  // Too long to name the connection: naming its provider invalidates more, never less.
  const wide = JSON.stringify({ p: event.providerId });
  if (Buffer.byteLength(wide) <= MAX_PAYLOAD_BYTES) return wide;
  throw new RangeError('a provider id too long for a change notification');
}

function eventOf(payload: string): ChangeEvent | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return null;
  }
  const { p, c } = (parsed ?? {}) as Partial<Record<keyof Payload, unknown>>;
  if (typeof p !== 'string' || (c !== undefined && typeof c !== 'string')) return null;
  return Object.freeze(c === undefined ? { providerId: p } : { providerId: p, connectionId: c });
}

/** pg sets it from the server's BackendKeyData; its type declarations leave it out. */
function backendPidOf(client: pg.Client): number | null {
  return (client as unknown as { readonly processID: number | null }).processID;
}

export class PgNotifyTransport implements ChangeTransport {
  readonly #options: PgNotifyOptions;
  /** The listening session, once LISTEN succeeded; null while (re)connecting. */
  #client: pg.Client | null = null;
  #channel: string | null = null;
  #deliver: ChangeListener = () => {};
  #closed = false;
  #retryDelayMs = RECONNECT_MIN_DELAY_MS;
  #retryTimer: NodeJS.Timeout | null = null;
  #heartbeat: NodeJS.Timeout | null = null;

  constructor(options: PgNotifyOptions) {
    this.#options = options;
  }

  /** Listening before it resolves, so that no change made after the store opened is missed. */
  async start(deliver: ChangeListener): Promise<void> {
    this.#deliver = deliver;
    await this.#connect(false);
    this.#heartbeat = setInterval(() => {
      const client = this.#client;
      client?.query('SELECT 1').catch((e: Error) => this.#lost(client, e));
    }, HEARTBEAT_INTERVAL_MS).unref();
  }

  async send(event: ChangeEvent): Promise<void> {
    const channel = this.#channel;
    if (channel === null) throw new Error('change notifications were not started');
    const payload = payloadOf(event);
    const client = this.#client;
    if (client) {
      try {
        await client.query('SELECT pg_notify($1, $2)', [channel, payload]);
        return;
      } catch {
        // The listening session is going (its error handler reconnects); the pool still reaches the database.
      }
    }
    await this.#options.notifyViaPool(channel, payload);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => {});
  }

  async #connect(resumed: boolean): Promise<void> {
    const client = new pg.Client({ ...this.#options.client, keepAlive: true, query_timeout: QUERY_TIMEOUT_MS });
    client.on('error', (e) => this.#lost(client, e));
    client.on('end', () => this.#lost(client, new Error('the change notification session ended')));
    client.on('notification', (message) => this.#received(client, message));
    let channel: string;
    try {
      await client.connect();
      const { rows } = await client.query<{ schema: string | null }>('SELECT current_schema() AS schema');
      channel = changeChannelOf(rows[0]?.schema ?? '');
      await client.query(`LISTEN "${channel}"`);
    } catch (e) {
      await client.end().catch(() => {});
      throw e;
    }
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#channel = channel;
    this.#client = client;
    this.#retryDelayMs = RECONNECT_MIN_DELAY_MS;
    // Whatever changed while nobody listened is unknown: say so, now that nothing more can be missed.
    if (resumed) this.#deliver(null);
  }

  #lost(client: pg.Client, error: Error): void {
    if (client !== this.#client) return;
    this.#client = null;
    client.end().catch(() => {});
    if (this.#closed) return;
    this.#options.onError(error);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#retryTimer) return;
    const delay = this.#retryDelayMs;
    this.#retryDelayMs = Math.min(delay * 2, RECONNECT_MAX_DELAY_MS);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#connect(true).catch((e: Error) => {
        this.#options.onError(e);
        this.#scheduleReconnect();
      });
    }, delay).unref();
  }

  #received(client: pg.Client, message: pg.Notification): void {
    if (client !== this.#client || message.channel !== this.#channel) return;
    if (message.processId === backendPidOf(client)) return;
    const event = message.payload === undefined ? null : eventOf(message.payload);
    if (event === null) return void this.#options.onError(new Error('ignored a malformed change notification'));
    this.#deliver(event);
  }
}
