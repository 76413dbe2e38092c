import fc from 'fast-check';
import { beforeAll, describe, it } from 'vitest';
import type { Policy } from '../../src/policy/engine.js';
import { addressProperties, loadHostilePolicy, policyProperties, readerProperties } from './properties.js';

/** The hostile properties, briefly (a few hundred runs each); properties.hostile.ts runs them at length. */
const RUNS = 300;

describe('address checks', () => {
  for (const { name, property } of addressProperties()) it(name, () => fc.assert(property, { numRuns: RUNS }));
});

describe('host and URL normalisation, keyword folding', () => {
  let policy: Policy;
  beforeAll(async () => {
    policy = await loadHostilePolicy();
  });
  for (const { name, property } of policyProperties(() => policy)) it(name, () => fc.assert(property, { numRuns: RUNS }));
});

describe('HTTP reader', () => {
  for (const { name, property } of readerProperties()) it(name, () => fc.assert(property, { numRuns: RUNS }));
});
