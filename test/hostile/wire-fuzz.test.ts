import { describeWireFuzz } from './suite.js';

/** Generated requests and responses against a real proxy, briefly; properties.hostile.ts runs many more. */
describeWireFuzz(60);
