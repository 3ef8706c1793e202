/** Values the admin resolvers build for GraphQL types that no domain record backs as it is. */
import type { WebhookRecord } from '../store/types.js';

/** A webhook as the API shows it: never its sealed secret; the clear one only right after creation. */
export interface WebhookView {
  readonly id: string;
  readonly url: string;
  readonly events: readonly string[];
  readonly createdAt: Date;
  readonly secret: string | null;
}

export function webhookView(w: WebhookRecord, secret: string | null = null): WebhookView {
  return { id: w.id, url: w.url, events: w.events, createdAt: w.createdAt, secret };
}
