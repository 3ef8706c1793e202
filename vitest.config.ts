import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql 16 has no "exports" map: Node gives every importer its CommonJS build (Apollo's and
    // ours), while Vite would give our modules the ESM one, and instanceof checks between the two
    // builds fail. The tests load what production loads.
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // Builds web/ when web/dist is missing or stale (the browser tests load the built apps).
    globalSetup: ['test/support/webBuild.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    env: { APOLLO_TELEMETRY_DISABLED: '1' },
  },
});
