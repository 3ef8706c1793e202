/**
 * Lifecycle webhooks (docs/lifecycle.md): an admin registers a URL for some connection events;
 * its signing secret (Standard Webhooks `whsec_…`) is generated here, sealed in the store and shown
 * once, in the creation's answer. Input is checked at the edge, as a provider's URLs are.
 */
import { randomBytes } from 'node:crypto';
import { badInput } from '../errors.js';
import { checkUrlValue } from '../providers/formats.js';
import { validateId } from '../domain/ids.js';
import { LIFECYCLE_EVENT_TYPES, type LifecycleEventType, type WebhookRecord } from '../store/types.js';
import type { RegistryDeps } from './deps.js';

/** Webhooks per instance: each event is written once per webhook, in the change's transaction. */
export const MAX_WEBHOOKS = 50;
export const WEBHOOK_SECRET_PREFIX = 'whsec_';
/** The spec asks for 24 to 64 random bytes. */
const WEBHOOK_SECRET_BYTES = 32;

export interface WebhookInputRaw {
  readonly id?: unknown;
  readonly url?: unknown;
  readonly events?: unknown;
}

/** A webhook as created: the record, and its secret in clear this once. */
export interface CreatedWebhook {
  readonly webhook: WebhookRecord;
  readonly secret: string;
}

function validateEvents(value: unknown, path: string): readonly LifecycleEventType[] {
  if (!Array.isArray(value) || value.length === 0)
    throw badInput(path, `must list at least one of ${LIFECYCLE_EVENT_TYPES.join(', ')}`);
  const events = value.map((event, i) => {
    const known = LIFECYCLE_EVENT_TYPES.find((t) => t === event);
    if (known === undefined) throw badInput(`${path}[${i}]`, `must be one of ${LIFECYCLE_EVENT_TYPES.join(', ')}`);
    return known;
  });
  return Object.freeze([...new Set(events)]);
}

function validateUrl(deps: RegistryDeps, value: unknown, path: string): string {
  if (typeof value !== 'string') throw badInput(path, 'must be a URL');
  const check = checkUrlValue(value, {
    allowInsecureHttp: deps.allowInsecureHttp,
    refusePrivateAddresses: !deps.allowPrivateNetworks,
  });
  if (!check.ok) throw badInput(path, check.problem);
  return check.value;
}

export async function createWebhook(deps: RegistryDeps, raw: WebhookInputRaw): Promise<CreatedWebhook> {
  const id = validateId(raw.id, 'input.id');
  const url = validateUrl(deps, raw.url, 'input.url');
  const events = validateEvents(raw.events, 'input.events');
  const secret = `${WEBHOOK_SECRET_PREFIX}${randomBytes(WEBHOOK_SECRET_BYTES).toString('base64')}`;
  const webhook = await deps.store.insertWebhook(
    {
      id,
      url,
      events,
      secret: deps.envelope.seal(secret, { kind: 'webhook', field: 'secret', webhookId: id }),
      createdAt: deps.now(),
    },
    MAX_WEBHOOKS,
  );
  return Object.freeze({ webhook, secret });
}

export function deleteWebhook(deps: RegistryDeps, id: string): Promise<void> {
  return deps.store.deleteWebhook(id);
}
