import { describeProperties } from './suite.js';

/** The hostile properties, briefly; properties.hostile.ts runs them at length. */
describeProperties(300);
