// One harness for every test: real gateways, collectors, origins and clients on loopback.
export * from './browser.js';
export * from './collector.js';
export * from './curl.js';
export * from './dashboard.js';
export * from './dns-server.js';
export * from './gateway.js';
export * from './list-origin.js';
export * from './origins.js';
export * from './raw-origin.js';
export * from './rules.js';
export * from './sockets.js';
export * from './content-pages.js';
export * from './netns.js';
export * from './events.js';
export * from './response-reader-run.js';
export * from './postgres.js';
export * from './collector-store.js';
