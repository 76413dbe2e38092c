import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // On PostgreSQL each `lachan central …` a test runs also connects and checks the schema.
    testTimeout: process.env.LACHAN_TEST_STORE === 'postgres' ? 60_000 : 30_000,
    hookTimeout: 60_000,
    // Integration tests start real processes and bind loopback ports; keep files
    // parallel but bounded so a 2-core CI box is not oversubscribed.
    maxWorkers: 2,
    // LACHAN_TEST_STORE=postgres: the collector tests on one PostgreSQL server (test/harness/collector-store.ts).
    globalSetup: ['test/harness/pg-global-setup.ts'],
  },
});
