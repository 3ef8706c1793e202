/**
 * Proactive refresh: tokens in use are renewed in the background shortly before they would enter
 * the refresh window, so that in steady state no request waits on an identity provider. The
 * resolver reports every successful resolution; only recently used connections are remembered
 * (an LRU), and a connection idle for a few token lifetimes is let go.
 *
 * Renewal time: `expiresAt - refreshSkew - lead - jitter`, lead and jitter a fraction of the
 * token's lifetime (bounded), so replicas sharing a store spread out and the first one wins. The
 * renewal asks for a token valid beyond the whole window rather than forcing a new one: a token
 * another replica has just renewed satisfies it, so the others re-read instead of refreshing again.
 * One renewal per connection at a time here; TokenSource's shared promise and the store's lock
 * guard the rest.
 */
import { LRUCache } from 'lru-cache';
import { connectionKeyOf, type ConnectionKey } from '../domain/ids.js';

/** Lead before the refresh window, as a fraction of the token's lifetime... */
const LEAD_FRACTION = 0.1;
/** ...at least this long, so that a provider call has time to finish before requests would need it... */
const MIN_LEAD_MS = 1_000;
/** ...unless that is more than this fraction of a (very short) lifetime... */
const MAX_LEAD_FRACTION = 0.25;
/** ...and at most this long (an hour-long token is renewed minutes, not an hour's tenth, early). */
const MAX_LEAD_MS = 5 * 60_000;
const JITTER_FRACTION = 0.1;
const MAX_JITTER_MS = 5 * 60_000;
/** Timers may fire a little late or (rounded) a hair early; the window allows for it. */
const TIMER_SLACK_MS = 50;
/** Connections unused for this many token lifetimes stop being renewed. */
export const IDLE_LIFETIMES = 2;
/** Renewals of one connection are at least this far apart, whatever its tokens look like. */
const MIN_RENEWAL_INTERVAL_MS = 1_000;
/** After a renewal that brought nothing new (the provider is down), the next try waits at least this. */
const RETRY_MIN_DELAY_MS = 1_000;
/** Renewals running at once across all connections; the rest queue. */
const MAX_CONCURRENT_RENEWALS = 4;
export const DEFAULT_MAX_REMEMBERED_CONNECTIONS = 10_000;

/** What the refresher needs of a token (an AccessToken has it). */
export interface TokenTimes {
  /** Epoch ms; null when the token never expires. */
  readonly expiresAt: number | null;
  /** Epoch ms when it was obtained; null if unknown (its lifetime is then counted from now). */
  readonly obtainedAt: number | null;
}

export interface ProactiveRefresherOptions {
  /** Tokens this close to expiry are renewed on the request path (TokenSource's skew). */
  readonly refreshSkewMs: number;
  /**
   * Renews the connection's token unless it stays valid at least `minValidityMs`, and puts the
   * result where requests find it; resolves with the token in use afterwards.
   */
  readonly renew: (key: ConnectionKey, minValidityMs: number) => Promise<TokenTimes>;
  /** A renewal failed; the connection is let go until a request uses it again. */
  readonly onError?: (error: unknown, key: ConnectionKey) => void;
  readonly maxConnections?: number;
  readonly now?: () => number;
  /** In [0, 1). */
  readonly random?: () => number;
}

interface Entry {
  readonly key: ConnectionKey;
  readonly name: string;
  /** Expiry of the token the schedule is for. */
  expiresAt: number;
  /** That token's lifetime (from when it was obtained, or else from when this refresher first saw it). */
  lifetimeMs: number;
  lastUsedAt: number;
  lastRenewedAt: number;
  timer: NodeJS.Timeout | null;
  renewing: boolean;
}

export class ProactiveRefresher {
  readonly #options: ProactiveRefresherOptions;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #entries: LRUCache<string, Entry>;
  readonly #queue: Entry[] = [];
  #running = 0;
  #stopped = false;

  constructor(options: ProactiveRefresherOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#entries = new LRUCache<string, Entry>({
      max: options.maxConnections ?? DEFAULT_MAX_REMEMBERED_CONNECTIONS,
      dispose: (entry) => {
        if (entry.timer) clearTimeout(entry.timer);
        entry.timer = null;
      },
    });
  }

  /** Connections remembered right now. */
  get size(): number {
    return this.#entries.size;
  }

  /** A request was served this token of the connection. */
  noteUse(key: ConnectionKey, token: TokenTimes): void {
    if (this.#stopped) return;
    const name = connectionKeyOf(key);
    const expiresAt = token.expiresAt;
    if (expiresAt === null) return void this.#entries.delete(name);
    const now = this.#now();
    let entry = this.#entries.get(name);
    if (!entry) {
      entry = {
        key: Object.freeze({ ...key }),
        name,
        expiresAt: Number.NaN,
        lifetimeMs: 0,
        lastUsedAt: now,
        lastRenewedAt: Number.NEGATIVE_INFINITY,
        timer: null,
        renewing: false,
      };
      this.#entries.set(name, entry);
    }
    entry.lastUsedAt = now;
    if (entry.renewing || entry.expiresAt === expiresAt) return;
    // A token not seen before (renewed by a request, by another replica, by consent): plan around it.
    this.#plan(entry, { expiresAt, obtainedAt: token.obtainedAt }, now);
  }

  /** Forgets every connection and cancels every timer; renewals under way finish unobserved. */
  stop(): void {
    this.#stopped = true;
    this.#queue.length = 0;
    this.#entries.clear();
  }

  #leadMs(entry: Entry): number {
    const lifetimeMs = entry.lifetimeMs;
    return Math.min(Math.max(LEAD_FRACTION * lifetimeMs, MIN_LEAD_MS), MAX_LEAD_FRACTION * lifetimeMs, MAX_LEAD_MS);
  }

  #maxJitterMs(entry: Entry): number {
    return Math.min(JITTER_FRACTION * entry.lifetimeMs, MAX_JITTER_MS);
  }

  #plan(entry: Entry, token: TokenTimes & { readonly expiresAt: number }, now: number): void {
    entry.expiresAt = token.expiresAt;
    const obtainedAt = token.obtainedAt !== null && token.obtainedAt < token.expiresAt ? token.obtainedAt : now;
    entry.lifetimeMs = token.expiresAt - obtainedAt;
    this.#schedule(entry, now);
  }

  #schedule(entry: Entry, now: number): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    // Renewing ahead spends provider calls to spare requests a wait: at most twice what requests
    // alone would spend. Tokens fresh for less than twice the lead and jitter are left to requests.
    if (entry.lifetimeMs - this.#options.refreshSkewMs < 2 * (this.#leadMs(entry) + this.#maxJitterMs(entry))) return;
    const untilWindowMs = entry.expiresAt - this.#options.refreshSkewMs - now;
    // Already inside the window (a provider that stayed down, a token noticed late): the request
    // path renews it, and the token it gets is noted again.
    if (untilWindowMs <= 0) return;
    const jitterMs = this.#random() * this.#maxJitterMs(entry);
    const dueMs = Math.max(
      untilWindowMs - this.#leadMs(entry) - jitterMs,
      entry.lastRenewedAt + MIN_RENEWAL_INTERVAL_MS - now,
      0,
    );
    this.#arm(entry, dueMs);
  }

  #arm(entry: Entry, delayMs: number): void {
    entry.timer = setTimeout(() => this.#due(entry), delayMs);
    entry.timer.unref();
  }

  #due(entry: Entry): void {
    entry.timer = null;
    if (this.#entries.peek(entry.name) !== entry || entry.renewing) return;
    if (this.#now() - entry.lastUsedAt > IDLE_LIFETIMES * entry.lifetimeMs)
      return void this.#entries.delete(entry.name);
    if (this.#running >= MAX_CONCURRENT_RENEWALS) return void this.#queue.push(entry);
    void this.#renew(entry);
  }

  async #renew(entry: Entry): Promise<void> {
    entry.renewing = true;
    this.#running++;
    const minValidityMs = this.#options.refreshSkewMs + this.#leadMs(entry) + this.#maxJitterMs(entry) + TIMER_SLACK_MS;
    try {
      const token = await this.#options.renew(entry.key, minValidityMs);
      entry.renewing = false;
      if (this.#stopped || this.#entries.peek(entry.name) !== entry) return;
      const now = this.#now();
      entry.lastRenewedAt = now;
      if (token.expiresAt === null) return void this.#entries.delete(entry.name);
      if (token.expiresAt !== entry.expiresAt)
        return this.#plan(entry, { expiresAt: token.expiresAt, obtainedAt: token.obtainedAt }, now);
      // The same token came back: the provider could not be reached. Try again while it is still
      // outside the window; after that, requests renew it (and report the failure to their callers).
      const untilWindowMs = entry.expiresAt - this.#options.refreshSkewMs - now;
      if (untilWindowMs > 0)
        this.#arm(entry, Math.min(untilWindowMs, Math.max(RETRY_MIN_DELAY_MS, this.#leadMs(entry) / 4)));
    } catch (e) {
      entry.renewing = false;
      // Gone, no longer connected, needs consent: requests will tell their callers; nothing to renew.
      if (this.#entries.peek(entry.name) === entry) this.#entries.delete(entry.name);
      if (!this.#stopped) this.#options.onError?.(e, entry.key);
    } finally {
      this.#running--;
      this.#drain();
    }
  }

  #drain(): void {
    while (!this.#stopped && this.#running < MAX_CONCURRENT_RENEWALS) {
      const next = this.#queue.shift();
      if (!next) return;
      if (this.#entries.peek(next.name) === next && !next.renewing) void this.#renew(next);
    }
  }
}
