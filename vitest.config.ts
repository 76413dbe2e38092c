import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start real processes and bind loopback ports; keep files
    // parallel but bounded so a 2-core CI box is not oversubscribed.
    maxWorkers: 2,
  },
});
