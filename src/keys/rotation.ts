/**
 * Key rotation (docs/design.md "Storage and encryption"): a new key becomes primary, every stored data
 * key is re-wrapped with it in the background while traffic continues, and old keys stay until
 * nothing uses them.
 *
 * Re-wrapping never decrypts into the store and never rewrites a value someone else changed: each
 * write is a compare-and-swap on the sealed text, and a value that moved on (a token refresh wrote
 * a new one) was sealed under the new primary already.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Envelope } from '../crypto/envelope.js';
import type { Keyring, KeyringKey } from '../crypto/keyring.js';
import { associatedData, type Sealed, type SealedRef } from '../crypto/sealed.js';
import { GatewayError, isGatewayError } from '../errors.js';
import type { SealedField, Store } from '../store/types.js';

export const DEFAULT_ROTATION_BATCH_SIZE = 200;

export type RotationState = 'IDLE' | 'RUNNING' | 'DONE' | 'FAILED';

/**
 * Flat on purpose (it is the `KeyRotation` GraphQL type). IDLE: no rotation since start;
 * RUNNING: re-wrapping; DONE: every value that could be re-wrapped is (`failed` counts those that
 * cannot be opened with any key held, for example under a key already forgotten); FAILED: the
 * store failed mid-way (the cause goes to `onError`) or stop() ended it; a new rotate() resumes.
 * `startedAt`/`finishedAt` are null until a rotation starts/ends.
 */
export interface RotationStatus {
  readonly state: RotationState;
  readonly primaryKeyId: string;
  readonly rewrapped: number;
  readonly failed: number;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
}

export interface KeyUsage {
  readonly id: string;
  readonly primary: boolean;
  readonly createdAt: Date;
  /** Stored secrets this key still wraps. */
  readonly inUse: number;
}

export interface KeyRotationOptions {
  readonly store: Store;
  readonly keyring: Keyring;
  readonly envelope: Envelope;
  readonly batchSize?: number;
  /** Receives store failures that stop a rotation and values that cannot be re-wrapped. */
  readonly onError?: (e: unknown) => void;
}

function fieldIdentity(field: SealedField): string {
  return `${associatedData(field.ref)}\n${field.value}`;
}

export class KeyRotation {
  readonly #store: Store;
  readonly #keyring: Keyring;
  readonly #envelope: Envelope;
  readonly #batchSize: number;
  readonly #onError: (e: unknown) => void;
  #status: RotationStatus;
  /** Set from the first synchronous step of rotate() until the loop ends. */
  #starting: Promise<RotationStatus> | null = null;
  #loop: Promise<void> = Promise.resolve();
  #stopRequested = false;

  constructor(options: KeyRotationOptions) {
    const batchSize = options.batchSize ?? DEFAULT_ROTATION_BATCH_SIZE;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
    this.#store = options.store;
    this.#keyring = options.keyring;
    this.#envelope = options.envelope;
    this.#batchSize = batchSize;
    this.#onError = options.onError ?? (() => {});
    this.#status = Object.freeze({
      state: 'IDLE',
      primaryKeyId: options.keyring.primary().id,
      rewrapped: 0,
      failed: 0,
      startedAt: null,
      finishedAt: null,
    });
  }

  status(): RotationStatus {
    return this.#status;
  }

  /**
   * Makes a new key primary (a keyring whose keys come from outside keeps its configured primary)
   * and starts re-wrapping in the background; resolves with the status at once. While a rotation
   * runs, returns its status without adding another key.
   */
  rotate(): Promise<RotationStatus> {
    if (this.#starting) return this.#starting;
    if (this.#status.state === 'RUNNING') return Promise.resolve(this.#status);
    const starting = this.#start();
    this.#starting = starting;
    const settled = () => {
      if (this.#starting === starting) this.#starting = null;
    };
    starting.then(settled, settled);
    return starting;
  }

  /** Resolves when no rotation is running (it never rejects: failures show in status()). */
  async whenIdle(): Promise<void> {
    await this.#starting?.catch(() => undefined);
    await this.#loop;
  }

  /**
   * For shutdown: ends a running rotation after the batch in hand (every swap is atomic, so nothing
   * is half done) and resolves once it has. It ends as FAILED; the next rotate() finishes the work.
   */
  async stop(): Promise<void> {
    this.#stopRequested = true;
    try {
      await this.whenIdle();
    } finally {
      this.#stopRequested = false;
    }
  }

  async keys(): Promise<KeyUsage[]> {
    const infos = this.#keyring.list();
    const counts = await Promise.all(infos.map((k) => this.#store.countSealedWrappedBy(k.id)));
    return infos.map((k, i) =>
      Object.freeze({ id: k.id, primary: k.primary, createdAt: k.createdAt, inUse: counts[i] ?? 0 }),
    );
  }

  /** Forgets a key once nothing uses it. */
  async retire(id: string): Promise<void> {
    const details = { field: 'id' };
    if (this.#starting || this.#status.state === 'RUNNING')
      throw new GatewayError('BAD_USER_INPUT', 'a key rotation is running; retire keys after it is DONE', { details });
    if (!this.#keyring.get(id)) throw new GatewayError('NOT_FOUND', `key ${id} not found`, { details });
    if (this.#keyring.primary().id === id)
      throw new GatewayError('BAD_USER_INPUT', `key ${id} is the primary key; rotate first`, { details });
    const inUse = await this.#store.countSealedWrappedBy(id);
    if (inUse > 0) throw new GatewayError('BAD_USER_INPUT', `key ${id} still wraps ${inUse} secrets`, { details });
    await this.#keyring.remove(id);
  }

  async #start(): Promise<RotationStatus> {
    const primary = await this.#newPrimary();
    this.#status = Object.freeze({
      state: 'RUNNING',
      primaryKeyId: primary.id,
      rewrapped: 0,
      failed: 0,
      startedAt: new Date(),
      finishedAt: null,
    });
    this.#loop = this.#rewrapAll(primary.id);
    return this.#status;
  }

  async #newPrimary(): Promise<KeyringKey> {
    try {
      return await this.#keyring.addPrimary();
    } catch (e) {
      // The environment keyring cannot add keys: its operator already made a new one primary.
      if (isGatewayError(e) && e.code === 'BAD_USER_INPUT') return this.#keyring.primary();
      throw e;
    }
  }

  /** A throwing listener must not turn a running rotation into a failed one. */
  #report(e: unknown): void {
    try {
      this.#onError(e);
    } catch {
      /* the listener's own problem */
    }
  }

  #update(change: Partial<RotationStatus>): void {
    this.#status = Object.freeze({ ...this.#status, ...change });
  }

  async #rewrapAll(primaryId: string): Promise<void> {
    // Values that cannot be re-wrapped stay in the store: each pass lists them again, skips them.
    const unrewrappable = new Set<string>();
    const refused = new Set<string>();
    // Passes over the store in key order, each row read once per pass. A value written behind the
    // cursor under an old key (another replica not yet on the new primary) is left to the next
    // pass; the work is done when a whole pass finds nothing to re-wrap.
    let after: SealedRef | null = null;
    let freshInPass = 0;
    try {
      for (;;) {
        await nextTurn();
        if (this.#stopRequested) return this.#update({ state: 'FAILED', finishedAt: new Date() });
        const batch = await this.#store.listSealedNotWrappedBy(primaryId, this.#batchSize, after);
        if (batch.length === 0) {
          if (after === null || freshInPass === 0) break;
          [after, freshInPass] = [null, 0];
          continue;
        }
        after = batch[batch.length - 1]!.ref;
        const fresh = batch.filter((f) => !unrewrappable.has(fieldIdentity(f)));
        freshInPass += fresh.length;
        let rewrapped = 0;
        for (const field of fresh) {
          const identity = fieldIdentity(field);
          let next: Sealed;
          try {
            next = this.#envelope.rewrap(field.value, field.ref);
          } catch (e) {
            unrewrappable.add(identity);
            this.#report(e);
            continue;
          }
          if (await this.#store.replaceSealed(field.ref, field.value, next)) {
            rewrapped += 1;
          } else if (refused.has(identity)) {
            // Listed again unchanged after the store refused to swap it: never loop on it forever.
            unrewrappable.add(identity);
            this.#report(
              new GatewayError('INTERNAL_SERVER_ERROR', 'stored secret cannot be re-wrapped', {
                cause: new Error(`the store keeps refusing to replace ${associatedData(field.ref)}`),
              }),
            );
          } else {
            // The value changed meanwhile (a token refresh wrote a new one, sealed under the new
            // primary); if another replica still sealed it under an old key, it is listed again.
            refused.add(identity);
          }
        }
        this.#update({ rewrapped: this.#status.rewrapped + rewrapped, failed: unrewrappable.size });
      }
      this.#update({ state: 'DONE', failed: unrewrappable.size, finishedAt: new Date() });
    } catch (e) {
      this.#update({ state: 'FAILED', failed: unrewrappable.size, finishedAt: new Date() });
      this.#report(e);
    }
  }
}
