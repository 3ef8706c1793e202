/**
 * docs/benchmarks.svg from a results file of `npm run bench`: grouped horizontal bars of req/s per
 * case (a, b, b', c, d) for each query, with p50 / p99 latency beside each bar. Hand-written SVG,
 * no dependency; `npm run bench` redraws it at the end of a run that measured the HTTP cases.
 *
 *   npx tsx bench/chart.ts                          # from bench/results/latest.json
 *   npx tsx bench/chart.ts bench/results/<file>.json
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CaseId, QueryReport } from './report.js';

export const CHART_FILE = new URL('../docs/benchmarks.svg', import.meta.url).pathname;
const LATEST_FILE = new URL('./results/latest.json', import.meta.url).pathname;
const REPO = new URL('../', import.meta.url).pathname;

/** d+ (Hive sharing identical in-flight calls) answers another question; docs/benchmarks.md has it. */
const CHART_CASES: readonly CaseId[] = Object.freeze(['a', 'b', "b'", 'c', 'd']);

const COLOR: Readonly<Record<CaseId, string>> = Object.freeze({
  a: '#9aa3ad',
  b: '#4e79a7',
  "b'": '#8fb8de',
  c: '#e8710a',
  d: '#59a14f',
  'd+': '#8cd17d',
});

/** Shorter than bench/cases.ts's LABELS, to fit beside the bars; docs/benchmarks.md defines each case. */
const CHART_LABEL: Readonly<Record<CaseId, string>> = Object.freeze({
  a: 'no gateway: subgraphs called directly',
  b: 'Apollo Gateway, stock',
  "b'": 'Apollo Gateway + our keep-alive client',
  c: 'this gateway: JWT + 2 tokens',
  d: 'Hive Gateway, forwards the caller JWT',
  'd+': 'Hive Gateway, shares identical calls',
});

/** What the chart reads of a results file (bench/run.ts writes more). */
export interface ChartInput {
  readonly startedAt: string;
  readonly machine: { readonly cpus: number; readonly cpuModel: string; readonly node: string };
  readonly settings: { readonly connections: number; readonly seconds: number; readonly rounds: number };
  readonly http: readonly QueryReport[];
}

const WIDTH = 900;
const MARGIN = 24;
const LABEL_WIDTH = 290;
const BAR_LEFT = MARGIN + LABEL_WIDTH;
const BAR_MAX_WIDTH = 380;
const ROW_HEIGHT = 30;
const BAR_HEIGHT = 20;
const TITLE_HEIGHT = 92;
const PANEL_HEADING = 34;
const AXIS_HEIGHT = 26;
const PANEL_GAP = 22;
const FOOTER_HEIGHT = 44;
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif";

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A round step (1, 2 or 5 × 10^k) giving about `count` gridlines up to `max`. */
function niceStep(max: number, count: number): number {
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
}

const ms = (v: number): string => (v >= 100 ? v.toFixed(0) : v.toFixed(1));

function text(x: number, y: number, content: string, attrs = ''): string {
  return `<text x="${x}" y="${y}"${attrs ? ` ${attrs}` : ''}>${esc(content)}</text>`;
}

/** `source`: the results file, named in the chart's footer. */
export function renderChart(results: ChartInput, source = 'bench/results/latest.json'): string {
  const reports = results.http.filter((r) => CHART_CASES.some((id) => r.cases[id]));
  if (reports.length === 0) throw new Error('the results hold no HTTP figures to chart');
  let maxRps = 0;
  for (const r of reports) {
    for (const id of CHART_CASES) {
      const o = r.cases[id];
      if (o?.ran) maxRps = Math.max(maxRps, o.figures.requestsPerSecond);
    }
  }
  if (maxRps <= 0) throw new Error('no charted case completed a request');
  const step = niceStep(maxRps, 5);
  const axisMax = Math.ceil(maxRps / step) * step;
  const scale = (rps: number) => (rps / axisMax) * BAR_MAX_WIDTH;
  const panelHeight = PANEL_HEADING + CHART_CASES.length * ROW_HEIGHT + AXIS_HEIGHT;
  const height = TITLE_HEIGHT + reports.length * (panelHeight + PANEL_GAP) - PANEL_GAP + FOOTER_HEIGHT;

  const date = results.startedAt.slice(0, 10);
  const m = results.machine;
  const s = results.settings;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-labelledby="title desc" font-family="${esc(FONT)}" font-size="13">`,
    `<title id="title">credential-gateway benchmarks: requests per second by case</title>`,
    `<desc id="desc">${esc(
      reports
        .map(
          (r) =>
            `${r.title}: ` +
            CHART_CASES.map((id) => {
              const o = r.cases[id];
              return o?.ran ? `${id} ${o.figures.requestsPerSecond.toFixed(0)} req/s` : `${id} n/a`;
            }).join(', '),
        )
        .join('; '),
    )}</desc>`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    text(
      MARGIN,
      32,
      'Requests per second through each gateway (higher is better)',
      'font-size="19" font-weight="600" fill="#1f2328"',
    ),
    text(
      MARGIN,
      56,
      `npm run bench, ${date}: ${m.cpus} × ${m.cpuModel}, Node ${m.node}, ${s.connections} concurrent requests (closed loop), ` +
        `${s.seconds / s.rounds} s windows,`,
      'font-size="12" fill="#57606a"',
    ),
    text(
      MARGIN,
      72,
      `each case's least disturbed of ${s.rounds} rounds. Beside each bar: req/s, then latency p50 and p99.`,
      'font-size="12" fill="#57606a"',
    ),
  ];

  let y = TITLE_HEIGHT;
  for (const r of reports) {
    out.push(
      `<text x="${MARGIN}" y="${y + 20}" fill="#1f2328"><tspan font-size="15" font-weight="600">${esc(r.title)}</tspan>` +
        `<tspan dx="12" font-size="12" fill="#57606a" font-family="ui-monospace, SFMono-Regular, Menlo, Consolas, monospace">${esc(r.query)}</tspan></text>`,
    );
    const rowsTop = y + PANEL_HEADING;
    const rowsBottom = rowsTop + CHART_CASES.length * ROW_HEIGHT;
    for (let v = 0; v <= axisMax; v += step) {
      const x = BAR_LEFT + scale(v);
      out.push(
        `<line x1="${x.toFixed(1)}" y1="${rowsTop - 4}" x2="${x.toFixed(1)}" y2="${rowsBottom}" stroke="${v === 0 ? '#8c959f' : '#eaeef2'}" stroke-width="1"/>`,
      );
      out.push(text(x, rowsBottom + 16, String(v), 'font-size="11" fill="#6e7781" text-anchor="middle"'));
    }
    out.push(text(BAR_LEFT - 12, rowsBottom + 16, 'req/s', 'font-size="11" fill="#6e7781" text-anchor="end"'));
    CHART_CASES.forEach((id, i) => {
      const top = rowsTop + i * ROW_HEIGHT;
      const mid = top + ROW_HEIGHT / 2 + 4;
      const ours = id === 'c';
      out.push(
        `<text y="${mid}" fill="#1f2328"${ours ? ' font-weight="600"' : ''}><tspan x="${MARGIN}">${esc(id.replace("'", '′'))}</tspan>` +
          `<tspan x="${MARGIN + 24}">${esc(CHART_LABEL[id])}</tspan></text>`,
      );
      const outcome = r.cases[id];
      if (!outcome) {
        out.push(text(BAR_LEFT + 6, mid, 'not run', 'fill="#6e7781" font-style="italic"'));
        return;
      }
      if (!outcome.ran) {
        out.push(text(BAR_LEFT + 6, mid, `n/a: ${outcome.reason.slice(0, 60)}`, 'fill="#6e7781" font-style="italic"'));
        return;
      }
      const f = outcome.figures;
      const w = Math.max(1, scale(f.requestsPerSecond));
      const barTop = top + (ROW_HEIGHT - BAR_HEIGHT) / 2;
      out.push(
        `<rect x="${BAR_LEFT}" y="${barTop}" width="${w.toFixed(1)}" height="${BAR_HEIGHT}" rx="2" fill="${COLOR[id]}"/>`,
      );
      const valueX = BAR_LEFT + w + 8;
      out.push(
        `<text x="${valueX.toFixed(1)}" y="${mid}" fill="#1f2328"><tspan font-weight="600">${f.requestsPerSecond.toFixed(0)}</tspan>` +
          `<tspan fill="#57606a" font-size="12" dx="8">p50 ${ms(f.latencyMs.p50)} ms · p99 ${ms(f.latencyMs.p99)} ms</tspan></text>`,
      );
    });
    y += panelHeight + PANEL_GAP;
  }
  out.push(
    text(
      MARGIN,
      height - 24,
      'b and b′ send the subgraphs no token; d forwards the caller\u2019s JWT; c verifies the caller\u2019s JWT and sends each subgraph its own token.',
      'font-size="11" fill="#6e7781"',
    ),
    text(
      MARGIN,
      height - 9,
      `Source: ${source}. Cases, the d+ variant, CPU per request and how to read the figures: docs/benchmarks.md.`,
      'font-size="11" fill="#6e7781"',
    ),
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}

export function writeChart(results: ChartInput, source?: string, file: string = CHART_FILE): void {
  writeFileSync(file, renderChart(results, source));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const source = process.argv[2] ?? LATEST_FILE;
  writeChart(JSON.parse(readFileSync(source, 'utf8')) as ChartInput, relative(REPO, source));
  console.log(`chart: ${relative(process.cwd(), CHART_FILE)} from ${relative(process.cwd(), source)}`);
}
