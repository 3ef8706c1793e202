/** The printed side of a run: one table per query, then the ratios between cases. */
import type { LoadResult } from './protocol.js';

export type CaseId = 'a' | 'b' | "b'" | 'c' | 'd' | 'd+';
export const CASE_IDS: readonly CaseId[] = Object.freeze(['a', 'b', "b'", 'c', 'd', 'd+']);

export interface CaseFigures extends LoadResult {
  /** CPU time of the gateway process per request in the window, µs (null: no gateway, case a). */
  readonly gatewayCpuMicrosPerRequest: number | null;
  /** CPU time of the process running the subgraphs (and idle authorization servers) per request, µs. */
  readonly subgraphCpuMicrosPerRequest: number;
  /** HTTP requests the subgraphs received per request (a gateway that shares identical calls sends fewer). */
  readonly subgraphCallsPerRequest: number;
  /**
   * Share of the machine's CPU capacity used by anything but this run (other processes on a shared
   * machine) while the case was measured, %; null where /proc/stat is missing. Above ~10 the
   * case's req/s and latencies are not comparable with the others; CPU µs per request still are.
   */
  readonly otherCpuPercent: number | null;
}

export type CaseOutcome =
  | {
      readonly ran: true;
      /** The figures of the round with the least other load. */
      readonly figures: CaseFigures;
      /** Which round that was (1-based), out of `rounds.length`. */
      readonly round: number;
      readonly rounds: readonly CaseFigures[];
    }
  | { readonly ran: false; readonly reason: string };

/** The round with the least other load (the first when that cannot be told). */
export function leastDisturbed(rounds: readonly CaseFigures[]): CaseOutcome {
  let best = 0;
  rounds.forEach((r, i) => {
    if ((r.otherCpuPercent ?? Infinity) < (rounds[best]!.otherCpuPercent ?? Infinity)) best = i;
  });
  return { ran: true, figures: rounds[best]!, round: best + 1, rounds };
}

export interface QueryReport {
  readonly id: string;
  readonly title: string;
  readonly query: string;
  readonly cases: Readonly<Partial<Record<CaseId, CaseOutcome>>>;
}

export interface Ratio {
  readonly name: string;
  readonly meaning: string;
  readonly numerator: CaseId;
  readonly denominator: CaseId;
}

export const RATIOS: readonly Ratio[] = Object.freeze([
  { name: 'c/b', meaning: 'this gateway vs stock Apollo Gateway', numerator: 'c', denominator: 'b' },
  { name: 'c/d', meaning: 'this gateway vs Hive Gateway', numerator: 'c', denominator: 'd' },
  { name: 'c/a', meaning: 'this gateway vs no gateway', numerator: 'c', denominator: 'a' },
  { name: "b'/b", meaning: 'keep-alive fetcher vs default fetcher', numerator: "b'", denominator: 'b' },
]);

export interface RatioFigures {
  readonly throughput: number;
  readonly p50: number;
  readonly p99: number;
  /** Gateway CPU per request; null when either case has no gateway. */
  readonly gatewayCpu: number | null;
}

export function ratioOf(report: QueryReport, ratio: Ratio): RatioFigures | null {
  const n = report.cases[ratio.numerator];
  const d = report.cases[ratio.denominator];
  if (!n?.ran || !d?.ran) return null;
  const a = n.figures;
  const b = d.figures;
  const cpu =
    a.gatewayCpuMicrosPerRequest !== null && b.gatewayCpuMicrosPerRequest !== null
      ? a.gatewayCpuMicrosPerRequest / b.gatewayCpuMicrosPerRequest
      : null;
  return {
    throughput: a.requestsPerSecond / b.requestsPerSecond,
    p50: a.latencyMs.p50 / b.latencyMs.p50,
    p99: a.latencyMs.p99 / b.latencyMs.p99,
    gatewayCpu: cpu,
  };
}

const pad = (s: string, n: number) => s.padEnd(n);
const num = (v: number | null, digits: number, width: number) =>
  (v === null || Number.isNaN(v) ? 'n/a' : v.toFixed(digits)).padStart(width);

export function formatQueryTable(report: QueryReport, labels: Readonly<Record<CaseId, string>>): string {
  const lines = [
    `${report.title}: ${report.query}`,
    `  ${pad('case', 50)}${'req/s'.padStart(8)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'errors'.padStart(8)}` +
      `${'gw CPU µs/req'.padStart(15)}${'subgraph CPU µs/req'.padStart(21)}${'subgraph calls/req'.padStart(20)}${'other CPU %'.padStart(13)}${'round'.padStart(7)}`,
  ];
  for (const id of CASE_IDS) {
    const outcome = report.cases[id];
    if (!outcome) continue;
    if (!outcome.ran) {
      lines.push(`  ${id}: n/a (${outcome.reason})`);
      continue;
    }
    const f = outcome.figures;
    lines.push(
      `  ${pad(`${id.padEnd(3)} ${labels[id]}`, 50)}${num(f.requestsPerSecond, 0, 8)}${num(f.latencyMs.p50, 2, 9)}${num(f.latencyMs.p99, 2, 9)}${String(f.errors).padStart(8)}` +
        `${num(f.gatewayCpuMicrosPerRequest, 0, 15)}${num(f.subgraphCpuMicrosPerRequest, 0, 21)}${num(f.subgraphCallsPerRequest, 2, 20)}${num(f.otherCpuPercent, 0, 13)}${`${outcome.round}/${outcome.rounds.length}`.padStart(7)}`,
    );
    if (f.errors > 0 || f.warmupErrors > 0)
      lines.push(
        `      errors: ${JSON.stringify(f.errorKinds)}; warm-up errors ${f.warmupErrors}; first: ${f.firstError}`,
      );
  }
  return lines.join('\n');
}

export function formatRatios(reports: readonly QueryReport[]): string {
  const lines = [
    'Ratios: req/s, p50, p99, gateway CPU per request (req/s above 1, the others below 1, favour the first case)',
    `  ${pad('', 48)}${reports.map((r) => pad(r.title, 36)).join('')}`,
  ];
  for (const ratio of RATIOS) {
    const cells = reports.map((r) => {
      const f = ratioOf(r, ratio);
      const cpu = f?.gatewayCpu == null ? '-' : f.gatewayCpu.toFixed(2);
      return pad(
        f === null ? 'n/a' : `${f.throughput.toFixed(2)} / ${f.p50.toFixed(2)} / ${f.p99.toFixed(2)} / ${cpu}`,
        36,
      );
    });
    lines.push(`  ${pad(`${ratio.name.padEnd(5)} ${ratio.meaning}`, 48)}${cells.join('')}`);
  }
  return lines.join('\n');
}
