import { defineConfig } from 'vitest/config';

/**
 * `npm run test:collector-pg`: the collector's tests again, with every collector on
 * PostgreSQL (test/harness/collector-store.ts; one server for the run). `npm test`
 * runs them on SQLite and then, through this file, on PostgreSQL. Left out: deploy-backup (the SQLite file's own backup; pg_dump
 * is PostgreSQL's), central-migrate (SQLite to PostgreSQL by definition), deploy-docker.
 */
process.env.LACHAN_TEST_STORE = 'postgres';

export default defineConfig({
  test: {
    include: [
      'test/central-alerts.test.ts',
      'test/central-alerts-browser.test.ts',
      'test/central-api.test.ts',
      'test/central-shipper.test.ts',
      'test/dashboard-accounts.test.ts',
      'test/dashboard-browser.test.ts',
      'test/dashboard-cli.test.ts',
      'test/dashboard-mobile.test.ts',
      'test/dashboard-security.test.ts',
      'test/district-e2e.test.ts',
      'test/district-review-browser.test.ts',
      'test/district-review.test.ts',
      'test/lists-central.test.ts',
      'test/privacy-device.test.ts',
      'test/review-requests.test.ts',
      'test/review-scope.test.ts',
      'test/safeguarding-e2e.test.ts',
      'test/yearly-report.test.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    maxWorkers: 2,
    globalSetup: ['test/harness/pg-global-setup.ts'],
  },
});
