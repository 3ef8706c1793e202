/**
 * `npm run bench:console`: the admin console at the instance limits, 1,000 providers and 10,000
 * connections on one of them, on the real gateway (SQLite in a temp directory, or a fresh
 * PostgreSQL schema with BENCH_CONSOLE_STORE=postgres) and in real Chromium.
 *
 * Measured, each BENCH_CONSOLE_RUNS times (median and p95):
 *  - API: the console's own documents (web/console/api.ts) against /admin/graphql: the first
 *    providers page of 50 with connection counts, the last providers page, a page of 50
 *    connections at the start, in the middle (page 100) and filtered by status; with the store
 *    statements each one costs.
 *  - Browser: the first screen (a fresh tab opens /console, signs in, and the providers table
 *    shows its 50 rows with counts), a reload with the session kept, and a page of connections
 *    (click "Next page" until the next 50 rows show).
 *
 * Results: printed, and written to bench/results/console-<store>-latest.json. BENCH_CONSOLE_BROWSER=0
 * measures the API only.
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { print } from 'graphql';
import type { Page } from 'playwright-core';
import { CONNECTIONS, CONNECTIONS_PAGE_SIZE, PROVIDERS, PROVIDERS_PAGE_SIZE } from '../web/console/api.js';
import type { ConnectionState } from '../src/domain/model.js';
import { ADMIN_KEY, startTestApp, type TestApp } from '../test/support/app.js';
import { launchBrowser } from '../test/support/browser.js';
import { connectionRecord } from '../test/support/connectionRecord.js';
import { freshPgSchema, pgUrl } from '../test/support/pg.js';
import { openPage } from '../test/support/web.js';

const PROVIDERS_TOTAL = 1_000;
const BIG_PROVIDER = 'p-0000';
const BIG_CONNECTIONS = 10_000;
const RUNS = Number(process.env['BENCH_CONSOLE_RUNS'] ?? 15);
const SEED_PARALLELISM = 8;
const RESULTS_FILE = new URL(
  `./results/console-${process.env['BENCH_CONSOLE_STORE'] === 'postgres' ? 'postgres' : 'sqlite'}-latest.json`,
  import.meta.url,
).pathname;

interface Figure {
  readonly medianMs: number;
  readonly p95Ms: number;
  readonly storeQueries?: number;
}

const providerId = (i: number) => `p-${String(i).padStart(4, '0')}`;
const connectionId = (i: number) => `user-${String(i).padStart(5, '0')}`;

function summary(samples: number[], storeQueries?: number): Figure {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return {
    medianMs: Math.round(at(0.5) * 10) / 10,
    p95Ms: Math.round(at(0.95) * 10) / 10,
    ...(storeQueries !== undefined && { storeQueries }),
  };
}

async function inBatches(count: number, each: (i: number) => Promise<unknown>): Promise<void> {
  for (let start = 0; start < count; start += SEED_PARALLELISM) {
    await Promise.all(Array.from({ length: Math.min(SEED_PARALLELISM, count - start) }, (_, k) => each(start + k)));
  }
}

/** Every 3rd connection CONNECTED, every 7th ERROR (so the status filter has work to do), the rest NOT_CONNECTED. */
function stateOf(i: number): ConnectionState {
  if (i % 7 === 0)
    return { status: 'ERROR', error: { code: 'REAUTHORIZATION_REQUIRED', message: 'the refresh token was revoked' } };
  return i % 3 === 0 ? { status: 'CONNECTED' } : { status: 'NOT_CONNECTED' };
}

async function seed(t: TestApp): Promise<void> {
  const started = performance.now();
  // Providers through the management API, as an admin would create them.
  await inBatches(PROVIDERS_TOTAL, async (i) => {
    const res = await t.admin(
      `mutation($input: CreateCredentialProviderInput!) { createCredentialProvider(input: $input) { id } }`,
      {
        input: {
          id: providerId(i),
          displayName: `Provider ${i}`,
          identityProvider: 'oauth2',
          grantType: 'AUTHORIZATION_CODE',
          clientId: `client-${i}`,
          clientSecret: `bench-secret-${i}`,
          parameters: [
            { name: 'authorizationUrl', value: 'https://idp.example.com/authorize' },
            { name: 'tokenUrl', value: 'https://idp.example.com/token' },
          ],
        },
      },
    );
    if (res.body.errors) throw new Error(JSON.stringify(res.body.errors));
  });
  // 10,000 connections straight into the store (the API would take minutes for no extra insight).
  const now = new Date();
  await inBatches(BIG_CONNECTIONS, async (i) => {
    const record = connectionRecord(BIG_PROVIDER, connectionId(i), now, {
      displayName: connectionId(i),
      state: stateOf(i),
    });
    const policy = {
      providerId: BIG_PROVIDER,
      connectionId: record.id,
      id: 'managed-identity',
      kind: 'MANAGED_IDENTITY' as const,
      objectId: 'credential-gateway',
      tenantId: null,
      appIds: [],
      issuer: null,
      createdAt: now,
    };
    await t.app.store.insertConnection(record, [policy], BIG_CONNECTIONS);
  });
  // A few connections on the other providers, so that every row has counts to show.
  await inBatches(PROVIDERS_TOTAL - 1, async (i) => {
    const res = await t.admin(`mutation($p: ID!) { createConnection(providerId: $p, input: { id: "c1" }) { id } }`, {
      p: providerId(i + 1),
    });
    if (res.body.errors) throw new Error(JSON.stringify(res.body.errors));
  });
  console.info(
    `seeded ${PROVIDERS_TOTAL} providers and ${BIG_CONNECTIONS} connections on ${BIG_PROVIDER} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
}

async function apiFigure(
  t: TestApp,
  query: string,
  variables: Record<string, unknown>,
  check: (data: any) => void,
): Promise<Figure> {
  const samples: number[] = [];
  let queries = 0;
  for (let run = 0; run < RUNS + 2; run++) {
    const before = t.app.store.stats.queries;
    const started = performance.now();
    const res = await t.admin(query, variables);
    const elapsed = performance.now() - started;
    if (res.body.errors) throw new Error(JSON.stringify(res.body.errors));
    check(res.body.data);
    queries = t.app.store.stats.queries - before;
    if (run >= 2) samples.push(elapsed); // the first two warm up the JIT and the page cache
  }
  return summary(samples, queries);
}

async function cursorAfter(
  t: TestApp,
  pages: number,
  variables: Record<string, unknown>,
  kind: 'providers' | 'connections',
): Promise<string | null> {
  let after: string | null = null;
  for (let i = 0; i < pages; i++) {
    const res: any = await t.admin(kind === 'providers' ? print(PROVIDERS) : print(CONNECTIONS), {
      ...variables,
      after,
    });
    after =
      kind === 'providers'
        ? res.body.data.credentialProviders.nextCursor
        : res.body.data.credentialProvider.connections.nextCursor;
  }
  return after;
}

async function apiFigures(t: TestApp): Promise<Record<string, Figure>> {
  const providers = print(PROVIDERS);
  const connections = print(CONNECTIONS);
  const fifty = (path: (d: any) => any[]) => (d: any) => {
    if (path(d).length !== 50) throw new Error(`expected 50 items, got ${path(d).length}`);
  };
  const lastProvidersCursor = await cursorAfter(
    t,
    PROVIDERS_TOTAL / PROVIDERS_PAGE_SIZE - 1,
    { first: PROVIDERS_PAGE_SIZE },
    'providers',
  );
  const conn = { providerId: BIG_PROVIDER, first: CONNECTIONS_PAGE_SIZE };
  const page100 = await cursorAfter(t, 99, conn, 'connections');
  const errorPage20 = await cursorAfter(t, 19, { ...conn, status: 'ERROR' }, 'connections');
  return {
    'providers page 1 (50, with counts)': await apiFigure(
      t,
      providers,
      { first: PROVIDERS_PAGE_SIZE, after: null },
      fifty((d) => d.credentialProviders.items),
    ),
    'providers page 20 (the last 50)': await apiFigure(
      t,
      providers,
      { first: PROVIDERS_PAGE_SIZE, after: lastProvidersCursor },
      fifty((d) => d.credentialProviders.items),
    ),
    'connections page 1 of 10,000': await apiFigure(
      t,
      connections,
      { ...conn, after: null, status: null },
      fifty((d) => d.credentialProvider.connections.items),
    ),
    'connections page 100 of 10,000': await apiFigure(
      t,
      connections,
      { ...conn, after: page100, status: null },
      fifty((d) => d.credentialProvider.connections.items),
    ),
    'connections status ERROR page 1': await apiFigure(
      t,
      connections,
      { ...conn, after: null, status: 'ERROR' },
      fifty((d) => d.credentialProvider.connections.items),
    ),
    'connections status ERROR page 20': await apiFigure(
      t,
      connections,
      { ...conn, after: errorPage20, status: 'ERROR' },
      fifty((d) => d.credentialProvider.connections.items),
    ),
  };
}

const rowsOf = (page: Page) => page.locator('table.list tbody tr');

async function browserFigures(t: TestApp): Promise<Record<string, Figure>> {
  const browser = await launchBrowser();
  const signInForm: number[] = [];
  const signedIn: number[] = [];
  const firstScreen: number[] = [];
  const reload: number[] = [];
  const connectionsFirst: number[] = [];
  const nextPage: number[] = [];
  try {
    for (let run = 0; run < RUNS + 1; run++) {
      const view = await openPage(browser);
      const page = view.page;
      try {
        // First screen: a fresh tab (empty cache), sign in, the providers table with 50 rows.
        let started = performance.now();
        await page.goto(`${t.url}/console`);
        await page.getByLabel('Admin API key').waitFor();
        const form = performance.now() - started;
        const signingIn = performance.now();
        await page.getByLabel('Admin API key').fill(ADMIN_KEY);
        await page.getByRole('button', { name: 'Sign in' }).click();
        await rowsOf(page)
          .nth(PROVIDERS_PAGE_SIZE - 1)
          .getByText('connected', { exact: false })
          .first()
          .waitFor();
        const signIn = performance.now() - signingIn;
        const first = performance.now() - started;

        started = performance.now();
        await page.reload();
        await rowsOf(page)
          .nth(PROVIDERS_PAGE_SIZE - 1)
          .waitFor();
        const again = performance.now() - started;

        // The big provider's page, then its next pages of connections.
        started = performance.now();
        await page.goto(`${t.url}/console#/providers/${BIG_PROVIDER}`);
        await page.getByRole('link', { name: connectionId(CONNECTIONS_PAGE_SIZE - 1), exact: true }).waitFor();
        const providerPage = performance.now() - started;
        const pageTimes: number[] = [];
        for (let p = 1; p <= 5; p++) {
          started = performance.now();
          await page.getByRole('button', { name: 'Next page' }).click();
          await page
            .getByRole('link', { name: connectionId((p + 1) * CONNECTIONS_PAGE_SIZE - 1), exact: true })
            .waitFor();
          pageTimes.push(performance.now() - started);
        }
        if (run > 0) {
          signInForm.push(form);
          signedIn.push(signIn);
          firstScreen.push(first);
          reload.push(again);
          connectionsFirst.push(providerPage);
          nextPage.push(...pageTimes);
        }
        if (view.problems().length > 0) throw new Error(`page problems: ${view.problems().join('; ')}`);
      } finally {
        await view.close();
      }
    }
  } finally {
    await browser.close();
  }
  return {
    'open /console (empty cache) to the sign-in form': summary(signInForm),
    'sign in to 50 providers with counts shown': summary(signedIn),
    'first screen: both of the above': summary(firstScreen),
    'reload with the session kept, 50 providers shown': summary(reload),
    'provider with 10,000 connections: page opened, first 50 shown': summary(connectionsFirst),
    'next page of 50 connections shown': summary(nextPage),
  };
}

function format(title: string, figures: Record<string, Figure>): string {
  const width = Math.max(...Object.keys(figures).map((k) => k.length));
  const lines = Object.entries(figures).map(
    ([name, f]) =>
      `  ${name.padEnd(width)}  median ${f.medianMs.toFixed(1).padStart(7)} ms   p95 ${f.p95Ms.toFixed(1).padStart(7)} ms${f.storeQueries !== undefined ? `   ${f.storeQueries} store statements` : ''}`,
  );
  return [title, ...lines].join('\n');
}

/** BENCH_CONSOLE_STORE=postgres: a fresh schema on the local PostgreSQL (DATABASE_URL), dropped afterwards. */
async function storeOptions(): Promise<{ storeUrl?: string; drop: () => Promise<void> }> {
  if (process.env['BENCH_CONSOLE_STORE'] !== 'postgres') return { drop: async () => {} };
  const schema = await freshPgSchema('bench_console');
  const url = new URL(pgUrl());
  url.searchParams.set('options', `-c search_path=${schema.schema}`);
  return { storeUrl: url.toString(), drop: schema.drop };
}

async function main(): Promise<void> {
  const { drop, ...options } = await storeOptions();
  const t = await startTestApp({ log: { level: 'warn' } }, options);
  try {
    await seed(t);
    const api = await apiFigures(t);
    console.info(format(`API (${RUNS} runs each, ${t.app.store.dialect})`, api));
    const browser = process.env['BENCH_CONSOLE_BROWSER'] === '0' ? {} : await browserFigures(t);
    if (Object.keys(browser).length > 0) console.info(format(`Chromium (${RUNS} runs each)`, browser));
    const result = {
      at: new Date().toISOString(),
      loadAverage: loadavg(),
      cpus: cpus().length,
      store: t.app.store.dialect,
      runs: RUNS,
      providers: PROVIDERS_TOTAL,
      connectionsOnOneProvider: BIG_CONNECTIONS,
      api,
      browser,
    };
    writeFileSync(RESULTS_FILE, `${JSON.stringify(result, null, 2)}\n`);
    console.info(
      `written to ${RESULTS_FILE} (load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')} on ${cpus().length} cores)`,
    );
  } finally {
    await t.close();
    await drop();
  }
}

await main();
