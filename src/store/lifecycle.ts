/**
 * What a connection change leaves behind in its own transaction: webhook outbox rows (one per
 * subscribed webhook) and, for a delete, the tokens to revoke. Written inside the change's
 * transaction, so a change is never without its event nor an event without its change.
 */
import { randomBytes } from 'node:crypto';
import type { Sealed } from '../crypto/sealed.js';
import type { ConnectionRecord, ProviderRecord } from '../domain/model.js';
import { json, ms, num, stateColumns, toConnection } from './rows.js';
import { raw, sql, type Row, type Sql, type Work } from './sql.js';
import {
  DELIVERY_STATUSES,
  LIFECYCLE_EVENT_TYPES,
  type DeliveryStatus,
  type LifecycleEventType,
  type RevocationRecord,
  type TokenRetirement,
  type WebhookDeliveryRecord,
  type WebhookRecord,
} from './types.js';

export const REVOCATION_COLUMNS = raw(
  'id, provider_id, connection_id, identity_provider, parameters, client_id, client_secret, tokens, attempts, next_attempt_at, created_at',
);
export const WEBHOOK_COLUMNS = raw('id, url, events, secret, created_at');
export const DELIVERY_COLUMNS = raw(
  'webhook_id, event_id, event_type, payload, status, attempts, next_attempt_at, last_error, created_at, delivered_at',
);

/** A Standard Webhooks message id: unique per event, the same on every attempt. */
export function newEventId(): string {
  return `msg_${randomBytes(18).toString('base64url')}`;
}

/** The payload names the provider, the connection and its status; never a token or secret. */
export function eventPayload(type: LifecycleEventType, connection: ConnectionRecord, at: Date): string {
  const deleted = type === 'connection.deleted';
  const state = stateColumns(deleted ? { status: 'NOT_CONNECTED' } : connection.state);
  return JSON.stringify({
    type,
    timestamp: at.toISOString(),
    data: {
      providerId: connection.providerId,
      connectionId: connection.id,
      status: deleted ? 'DELETED' : state.status,
      error: state.errorCode === null ? null : { code: state.errorCode, message: state.errorMessage },
    },
  });
}

/** Event names hold `_`, a LIKE wildcard: matched literally. */
function subscribedTo(type: LifecycleEventType): string {
  return `%${JSON.stringify(type).replace(/[\\%_]/g, '\\$&')}%`;
}

/** One outbox row per webhook subscribed to `type` (none when nobody listens). */
export function recordEvent(type: LifecycleEventType, connection: ConnectionRecord, at: Date = new Date()): Sql {
  const now = ms(at);
  return sql`INSERT INTO webhook_deliveries (${DELIVERY_COLUMNS})
    SELECT id, ${newEventId()}, ${type}, ${eventPayload(type, connection, at)}, 'PENDING', 0, ${now}, NULL, ${now}, NULL
    FROM webhooks WHERE events LIKE ${subscribedTo(type)} ESCAPE '\\'`;
}

/**
 * The deleted connections' tokens move to the revocation queue, sealed anew to their row, with
 * what revocation needs of the provider (which may go in the same transaction).
 */
export function* retireTokens(
  provider: ProviderRecord,
  connections: readonly ConnectionRecord[],
  retire: TokenRetirement,
): Work<void> {
  const now = Date.now();
  for (const c of connections) {
    if (c.tokens === null) continue;
    const own = c.clientId !== null;
    const clientId = own ? c.clientId : provider.clientId;
    if (clientId === null) continue;
    const id = retire.newId();
    const secret: Sealed | null = own ? c.clientSecret : provider.clientSecret;
    const from = own
      ? ({ kind: 'connection', field: 'clientSecret', providerId: c.providerId, connectionId: c.id } as const)
      : ({ kind: 'provider', field: 'clientSecret', providerId: provider.id } as const);
    const clientSecret =
      secret === null
        ? null
        : retire.reseal(secret, from, { kind: 'revocation', field: 'clientSecret', revocationId: id });
    const tokens = retire.reseal(
      c.tokens,
      { kind: 'connection', field: 'tokens', providerId: c.providerId, connectionId: c.id },
      { kind: 'revocation', field: 'tokens', revocationId: id },
    );
    yield sql`INSERT INTO revocations (${REVOCATION_COLUMNS})
      VALUES (${id}, ${c.providerId}, ${c.id}, ${provider.identityProvider}, ${json(provider.parameters)}, ${clientId}, ${clientSecret},
        ${tokens}, 0, ${now}, ${now})`;
  }
}

/** Records the deletion of `connections`: their events, and their tokens to revoke. */
export function* recordDeletes(
  provider: ProviderRecord,
  rows: readonly Row[],
  retire: TokenRetirement | undefined,
): Work<void> {
  const connections = rows.map(toConnection);
  if (retire) yield* retireTokens(provider, connections, retire);
  const at = new Date();
  for (const c of connections) yield recordEvent('connection.deleted', c, at);
}

function text(row: Row, column: string): string {
  const v = row[column];
  if (typeof v !== 'string') throw new TypeError(`column ${column} is not text`);
  return v;
}

function textOrNull(row: Row, column: string): string | null {
  return row[column] === null || row[column] === undefined ? null : text(row, column);
}

function dateOrNull(row: Row, column: string): Date | null {
  return row[column] === null || row[column] === undefined ? null : new Date(num(row, column));
}

function parameters(row: Row): Readonly<Record<string, string>> {
  const v = row['parameters'];
  const parsed: unknown = typeof v === 'string' ? JSON.parse(v) : v;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new TypeError('column parameters is not a map');
  return Object.freeze({ ...(parsed as Record<string, string>) });
}

export function toRevocation(row: Row): RevocationRecord {
  return Object.freeze({
    id: text(row, 'id'),
    providerId: text(row, 'provider_id'),
    connectionId: text(row, 'connection_id'),
    identityProvider: text(row, 'identity_provider'),
    parameters: parameters(row),
    clientId: text(row, 'client_id'),
    clientSecret: textOrNull(row, 'client_secret') as Sealed | null,
    tokens: text(row, 'tokens') as Sealed,
    attempts: num(row, 'attempts'),
    createdAt: new Date(num(row, 'created_at')),
  });
}

function eventTypeOf(value: string): LifecycleEventType {
  const found = LIFECYCLE_EVENT_TYPES.find((t) => t === value);
  if (found === undefined) throw new TypeError('unknown lifecycle event type');
  return found;
}

export function toWebhook(row: Row): WebhookRecord {
  const events: unknown = JSON.parse(text(row, 'events'));
  if (!Array.isArray(events)) throw new TypeError('column events is not a list');
  return Object.freeze({
    id: text(row, 'id'),
    url: text(row, 'url'),
    events: Object.freeze(events.map((e) => eventTypeOf(String(e)))),
    secret: text(row, 'secret') as Sealed,
    createdAt: new Date(num(row, 'created_at')),
  });
}

function deliveryStatusOf(value: string): DeliveryStatus {
  const found = DELIVERY_STATUSES.find((s) => s === value);
  if (found === undefined) throw new TypeError('unknown delivery status');
  return found;
}

export function toDelivery(row: Row): WebhookDeliveryRecord {
  return Object.freeze({
    webhookId: text(row, 'webhook_id'),
    eventId: text(row, 'event_id'),
    eventType: eventTypeOf(text(row, 'event_type')),
    payload: text(row, 'payload'),
    status: deliveryStatusOf(text(row, 'status')),
    attempts: num(row, 'attempts'),
    nextAttemptAt: dateOrNull(row, 'next_attempt_at'),
    lastError: textOrNull(row, 'last_error'),
    createdAt: new Date(num(row, 'created_at')),
    deliveredAt: dateOrNull(row, 'delivered_at'),
  });
}
