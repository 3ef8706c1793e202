/**
 * A tiny Prometheus registry: counters and fixed-bucket histograms with labels, and gauges read at
 * scrape time, exposed in the text format 0.0.4. Label values must come from bounded sets (codes,
 * route patterns, admin-chosen ids): every distinct value is a series kept for the process's life.
 *
 *   const registry = new MetricsRegistry();
 *   const calls = registry.counter('cg_calls_total', 'Calls by outcome.', ['outcome']);
 *   calls.inc({ outcome: 'success' });
 *   res.end(registry.expose());
 */

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Seconds; suits calls that take milliseconds to a few seconds (identity providers, databases). */
export const DEFAULT_DURATION_BUCKETS_SECONDS: readonly number[] = Object.freeze([
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

export type Labels = Readonly<Record<string, string>>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Label values: backslash, double quote and line feed are escaped (format 0.0.4). */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text: backslash and line feed are escaped. */
function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function renderLabels(pairs: readonly (readonly [string, string])[]): string {
  return pairs.length === 0 ? '' : `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

/** Checks a label set against the declared names; returns the values in declared order. */
function valuesOf(metric: string, names: readonly string[], labels: Labels): string[] {
  const given = Object.keys(labels);
  if (given.length !== names.length || !names.every((n) => typeof labels[n] === 'string'))
    throw new TypeError(`${metric}: labels must be exactly {${names.join(', ')}}, got {${given.join(', ')}}`);
  return names.map((n) => labels[n]!);
}

interface Collector {
  readonly name: string;
  render(): string;
}

export interface Counter {
  /** Adds `by` (default 1, never negative) to the series of `labels`. */
  inc(labels?: Labels, by?: number): void;
  /** The series' current value (0 when never incremented). */
  get(labels?: Labels): number;
}

export interface Histogram {
  /** Records one observation (seconds, for durations). */
  observe(labels: Labels, value: number): void;
}

class CounterImpl implements Counter, Collector {
  readonly #series = new Map<string, { readonly values: readonly string[]; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    if (!Number.isFinite(by) || by < 0)
      throw new RangeError(`${this.name}: a counter only goes up by a finite amount, got ${by}`);
    const values = valuesOf(this.name, this.labelNames, labels);
    const key = JSON.stringify(values);
    const series = this.#series.get(key);
    if (series) series.value += by;
    else this.#series.set(key, { values, value: by });
  }

  get(labels: Labels = {}): number {
    return this.#series.get(JSON.stringify(valuesOf(this.name, this.labelNames, labels)))?.value ?? 0;
  }

  render(): string {
    const head = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} counter\n`;
    // A counter without labels is shown from the start, so a rate over it has a first point.
    if (this.labelNames.length === 0 && this.#series.size === 0) return `${head}${this.name} 0\n`;
    let body = '';
    for (const { values, value } of this.#series.values())
      body += `${this.name}${renderLabels(this.labelNames.map((n, i) => [n, values[i]!]))} ${formatValue(value)}\n`;
    return head + body;
  }
}

class HistogramImpl implements Histogram, Collector {
  readonly #series = new Map<
    string,
    { readonly values: readonly string[]; readonly counts: number[]; sum: number; count: number }
  >();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {}

  observe(labels: Labels, value: number): void {
    if (Number.isNaN(value)) throw new RangeError(`${this.name}: cannot observe NaN`);
    const values = valuesOf(this.name, this.labelNames, labels);
    const key = JSON.stringify(values);
    let series = this.#series.get(key);
    if (!series) {
      series = { values, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.#series.set(key, series);
    }
    // Per-bucket (not cumulative) counts; render() accumulates.
    const bucket = this.buckets.findIndex((upper) => value <= upper);
    if (bucket >= 0) series.counts[bucket]! += 1;
    series.sum += value;
    series.count += 1;
  }

  render(): string {
    let out = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} histogram\n`;
    for (const { values, counts, sum, count } of this.#series.values()) {
      const pairs = this.labelNames.map((n, i) => [n, values[i]!] as const);
      let cumulative = 0;
      this.buckets.forEach((upper, i) => {
        cumulative += counts[i]!;
        out += `${this.name}_bucket${renderLabels([...pairs, ['le', formatValue(upper)]])} ${cumulative}\n`;
      });
      out += `${this.name}_bucket${renderLabels([...pairs, ['le', '+Inf']])} ${count}\n`;
      out += `${this.name}_sum${renderLabels(pairs)} ${formatValue(sum)}\n`;
      out += `${this.name}_count${renderLabels(pairs)} ${count}\n`;
    }
    return out;
  }
}

class GaugeImpl implements Collector {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly read: () => number,
  ) {}

  render(): string {
    return `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} gauge\n${this.name} ${formatValue(this.read())}\n`;
  }
}

export class MetricsRegistry {
  readonly #collectors = new Map<string, Collector>();

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#register(new CounterImpl(name, help, this.#checkLabels(name, labelNames)));
  }

  histogram(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets: readonly number[] = DEFAULT_DURATION_BUCKETS_SECONDS,
  ): Histogram {
    if (labelNames.includes('le')) throw new TypeError(`${name}: 'le' is reserved for histogram buckets`);
    if (buckets.length === 0 || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!)))
      throw new TypeError(`${name}: buckets must be finite and strictly increasing`);
    return this.#register(
      new HistogramImpl(name, help, this.#checkLabels(name, labelNames), Object.freeze([...buckets])),
    );
  }

  /** A value read at each scrape (for state kept elsewhere). */
  gauge(name: string, help: string, read: () => number): void {
    this.#register(new GaugeImpl(name, help, read));
  }

  /** Every metric in the text exposition format 0.0.4, in registration order. */
  expose(): string {
    let out = '';
    for (const collector of this.#collectors.values()) out += collector.render();
    return out;
  }

  #checkLabels(name: string, labelNames: readonly string[]): readonly string[] {
    for (const label of labelNames)
      if (!LABEL_NAME.test(label) || label.startsWith('__'))
        throw new TypeError(`${name}: invalid label name '${label}'`);
    if (new Set(labelNames).size !== labelNames.length) throw new TypeError(`${name}: duplicate label names`);
    return Object.freeze([...labelNames]);
  }

  #register<T extends Collector>(collector: T): T {
    if (!METRIC_NAME.test(collector.name)) throw new TypeError(`invalid metric name '${collector.name}'`);
    if (this.#collectors.has(collector.name)) throw new TypeError(`metric '${collector.name}' is already registered`);
    this.#collectors.set(collector.name, collector);
    return collector;
  }
}
