import { describeProperties, describeWireFuzz } from './suite.js';

/** The hostile properties at length: 20,000 runs for each pure property, 1,500 for each on the wire. */
describeProperties(20_000);
describeWireFuzz(1_500);
