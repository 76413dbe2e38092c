import { defineConfig } from 'vitest/config';

/**
 * `npm run test:hostile`: the slow half of the hostile suite (thousands of real
 * sockets, long property runs). One file at a time: each one loads the machine.
 */
export default defineConfig({
  test: {
    include: ['test/hostile/**/*.hostile.ts'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    maxWorkers: 1,
    fileParallelism: false,
  },
});
