/**
 * What changed in the registry, for whoever holds derived state (the token cache). In one process
 * the registry publishes directly; across replicas the store's notifications feed the same feed.
 */
export interface ChangeEvent {
  readonly providerId: string;
  /** Absent: the whole provider changed (or went). */
  readonly connectionId?: string;
}

export type ChangeListener = (event: ChangeEvent) => void;

export class ChangeFeed {
  readonly #listeners = new Set<ChangeListener>();

  subscribe(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  publish(event: ChangeEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}
