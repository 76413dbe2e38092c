/**
 * bench:tls: what interception costs per host.
 *
 *   npm run bench:tls [-- --hosts 200 --cached 100000 --handshakes 100]
 *
 * 1. First visit: a leaf certificate issued and its TLS context built, for distinct
 *    hosts one after another (median, p95). Target ≤ 10 ms.
 * 2. Cached visit: the context for a host seen before. Target ≤ 0.1 ms.
 * 3. Burst: distinct hosts all at once (signing runs in libuv's pool).
 * 4. Reference: the same certificate signed by node-forge in pure JS, which is what
 *    issuance would cost without node:crypto.
 * 5. TLS handshake on loopback with an issued certificate, EC vs RSA leaf key.
 * 6. Throughput of a 1 KB HTTPS page through a bare CONNECT tunnel, lachan tunnelling
 *    and lachan intercepting (`--throughput-seconds 5 --throughput-reps 3`; 0 skips).
 * 7. Inspection over HTTPS (bench/lib/https-inspection.ts): 1 KB and 100 KB HTML pages
 *    through lachan intercepting with a content_limit, squid 5.7 `ssl_bump` (where
 *    squid-openssl is installed) and a bare tunnel, pinned, with CPU per request
 *    (`--inspection-seconds 5 --inspection-reps 3`; 0 skips). `--base-dist DIR` (another
 *    build's dist/, e.g. main's in a second worktree) measures its lachan beside this one.
 *    `--encoding gzip|br` serves the pages compressed, `--pages news` serves news text
 *    (`--data`, default ../shared/data) instead of the lesson line, which compresses 170 to 1.
 *
 * Prints a table, then one JSON line (`{"bench":"tls",…}`) for CI to keep.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createSecureContext, createServer, connect } from 'node:tls';
import forge from 'node-forge';
import { CertificateAuthority, createCaMaterial, type LeafKeyType } from '../src/tls/index.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureTunnelThroughput } from './lib/tunnel-throughput.js';
import { type HttpsInspectionRow, measureHttpsInspection } from './lib/https-inspection.js';
import { pageChoice } from './lib/origin.js';

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  if (index === -1) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} takes a positive integer`);
  return value;
}

const HOSTS = argument('hosts', 200);
const CACHED_LOOKUPS = argument('cached', 100_000);
const HANDSHAKES = argument('handshakes', 100);
const THROUGHPUT_SECONDS = process.argv.includes('--throughput-seconds') ? Number(process.argv[process.argv.indexOf('--throughput-seconds') + 1]) : 5;
const THROUGHPUT_REPS = argument('throughput-reps', 3);
const FORGE_SIGNATURES = Math.min(20, HOSTS);
const INSPECTION_SECONDS = process.argv.includes('--inspection-seconds') ? Number(process.argv[process.argv.indexOf('--inspection-seconds') + 1]) : 5;
const INSPECTION_REPS = argument('inspection-reps', 3);
const BASE_DIST = process.argv.includes('--base-dist') ? path.resolve(process.argv[process.argv.indexOf('--base-dist') + 1]!) : undefined;
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Summary {
  median: number;
  p95: number;
  mean: number;
  max: number;
}

function summarise(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return {
    median: at(0.5),
    p95: at(0.95),
    mean: sorted.reduce((sum, value) => sum + value, 0) / sorted.length,
    max: sorted[sorted.length - 1]!,
  };
}

const round = (value: number, digits = 3) => Number(value.toFixed(digits));

async function firstVisits(ca: CertificateAuthority, prefix: string): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < HOSTS; i++) {
    const start = performance.now();
    await ca.secureContextFor(`h${i}.${prefix}.bench.test`);
    samples.push(performance.now() - start);
  }
  return samples;
}

async function issuanceOnly(ca: CertificateAuthority): Promise<{ issue: number[]; context: number[] }> {
  const issue: number[] = [];
  const context: number[] = [];
  for (let i = 0; i < HOSTS; i++) {
    let start = performance.now();
    const leaf = await ca.issue(`i${i}.split.bench.test`);
    issue.push(performance.now() - start);
    start = performance.now();
    createSecureContext({ cert: leaf.certPem, key: leaf.keyPem });
    context.push(performance.now() - start);
  }
  return { issue, context };
}

function cachedLookups(ca: CertificateAuthority, prefix: string): { sync: number; promise: Promise<number> } {
  const hosts = Array.from({ length: HOSTS }, (_, i) => `h${i}.${prefix}.bench.test`);
  for (let i = 0; i < 10_000; i++) ca.cachedSecureContext(hosts[i % HOSTS]!); // warm-up
  let start = performance.now();
  let misses = 0;
  for (let i = 0; i < CACHED_LOOKUPS; i++) if (ca.cachedSecureContext(hosts[i % HOSTS]!) === undefined) misses++;
  const sync = (performance.now() - start) / CACHED_LOOKUPS;
  if (misses > 0) throw new Error(`${misses} cache misses: the cache is smaller than --hosts`);
  const promise = (async () => {
    start = performance.now();
    for (let i = 0; i < CACHED_LOOKUPS; i++) await ca.secureContextFor(hosts[i % HOSTS]!);
    return (performance.now() - start) / CACHED_LOOKUPS;
  })();
  return { sync, promise };
}

async function burst(ca: CertificateAuthority): Promise<number> {
  const start = performance.now();
  await Promise.all(Array.from({ length: HOSTS }, (_, i) => ca.secureContextFor(`b${i}.burst.bench.test`)));
  return performance.now() - start;
}

/** The same kind of certificate built and signed by node-forge alone (RSA, pure JS). */
function forgeSignatures(caKeyPem: string, caCertPem: string): number[] {
  const caKey = forge.pki.privateKeyFromPem(caKeyPem);
  const caCert = forge.pki.certificateFromPem(caCertPem);
  const leafKeys = forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
  const samples: number[] = [];
  for (let i = 0; i < FORGE_SIGNATURES; i++) {
    const start = performance.now();
    const cert = forge.pki.createCertificate();
    cert.publicKey = leafKeys.publicKey;
    cert.serialNumber = `01${forge.util.bytesToHex(forge.random.getBytesSync(15))}`;
    cert.validity.notBefore = new Date(Date.now() - 86_400_000);
    cert.validity.notAfter = new Date(Date.now() + 365 * 86_400_000);
    cert.setSubject([{ name: 'commonName', value: `f${i}.forge.bench.test` }]);
    cert.setIssuer(caCert.subject.attributes);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: `f${i}.forge.bench.test` }] },
    ]);
    cert.sign(caKey, forge.md.sha256.create());
    forge.pki.certificateToPem(cert);
    samples.push(performance.now() - start);
  }
  return samples;
}

/** Full TLS 1.3 handshakes on loopback against a server presenting an issued leaf. */
async function handshakes(caPem: string, caKeyPem: string, leafKeyType: LeafKeyType): Promise<number[]> {
  const ca = await CertificateAuthority.fromPem(caPem, caKeyPem, { leafKeyType });
  const context = await ca.secureContextFor('handshake.bench.test');
  const server = createServer({ SNICallback: (_name, callback) => callback(null, context) }, (socket) => socket.end());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const samples: number[] = [];
  try {
    for (let i = 0; i < HANDSHAKES; i++) {
      const start = performance.now();
      const socket = connect({ host: '127.0.0.1', port, servername: 'handshake.bench.test', ca: [caPem], session: undefined });
      await once(socket, 'secureConnect');
      samples.push(performance.now() - start);
      socket.destroy();
    }
  } finally {
    server.close();
  }
  return samples;
}

async function main(): Promise<void> {
  const material = await createCaMaterial({ schoolName: 'Bench' });
  const ca = await CertificateAuthority.fromPem(material.certPem, material.keyPem, { cacheSize: Math.max(2000, HOSTS * 4) });
  // Warm up JIT, the thread pool and OpenSSL's tables.
  for (let i = 0; i < 20; i++) await ca.secureContextFor(`w${i}.warmup.bench.test`);

  const first = summarise(await firstVisits(ca, 'first'));
  const split = await issuanceOnly(ca);
  const issue = summarise(split.issue);
  const context = summarise(split.context);
  const cached = cachedLookups(ca, 'first');
  const cachedPromise = await cached.promise;
  const burstMs = await burst(ca);
  const forgeSign = summarise(forgeSignatures(material.keyPem, material.certPem));
  const ecHandshake = summarise(await handshakes(material.certPem, material.keyPem, 'ec'));
  const rsaHandshake = summarise(await handshakes(material.certPem, material.keyPem, 'rsa'));

  const rows: Array<[string, string, string, string]> = [
    ['first visit (issue + context)', `${round(first.median)} ms`, `${round(first.p95)} ms`, first.median <= 10 ? 'ok ≤ 10 ms' : 'MISSES 10 ms'],
    ['  of which: certificate', `${round(issue.median)} ms`, `${round(issue.p95)} ms`, ''],
    ['  of which: tls.createSecureContext', `${round(context.median)} ms`, `${round(context.p95)} ms`, ''],
    ['cached visit (sync lookup)', `${round(cached.sync * 1000, 2)} µs`, '', cached.sync <= 0.1 ? 'ok ≤ 0.1 ms' : 'MISSES 0.1 ms'],
    ['cached visit (secureContextFor)', `${round(cachedPromise * 1000, 2)} µs`, '', cachedPromise <= 0.1 ? 'ok ≤ 0.1 ms' : 'MISSES 0.1 ms'],
    [`burst of ${HOSTS} new hosts`, `${round(burstMs, 1)} ms total`, `${round((HOSTS / burstMs) * 1000, 0)} /s`, ''],
    ['reference: node-forge pure-JS signing', `${round(forgeSign.median)} ms`, `${round(forgeSign.p95)} ms`, 'not used'],
    ['TLS handshake, EC P-256 leaf', `${round(ecHandshake.median)} ms`, `${round(ecHandshake.p95)} ms`, 'default'],
    ['TLS handshake, RSA 2048 leaf', `${round(rsaHandshake.median)} ms`, `${round(rsaHandshake.p95)} ms`, ''],
  ];
  const widths = [40, 18, 14, 14];
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join(' ')
      .trimEnd();
  process.stdout.write(`bench:tls: ${HOSTS} hosts, ${CACHED_LOOKUPS} cached lookups, ${HANDSHAKES} handshakes, Node ${process.version}\n`);
  process.stdout.write(`${line(['', 'median', 'p95', 'target'])}\n`);
  for (const row of rows) process.stdout.write(`${line(row)}\n`);

  const throughput = THROUGHPUT_SECONDS > 0 ? await measureTunnelThroughput(THROUGHPUT_SECONDS, THROUGHPUT_REPS, 10) : null;
  if (throughput !== null) {
    const ratio = (value: number): string => `${round(value / throughput.bareTunnel, 2)}× bare tunnel`;
    process.stdout.write(`\nHTTPS 1 KB page, 10 keep-alive connections, median of ${THROUGHPUT_REPS} × ${THROUGHPUT_SECONDS} s\n`);
    process.stdout.write(`${line(['bare CONNECT tunnel', `${round(throughput.bareTunnel, 0)} req/s`, '', ''])}\n`);
    process.stdout.write(`${line(['lachan, tunnelled', `${round(throughput.lachanTunnelled, 0)} req/s`, ratio(throughput.lachanTunnelled), ''])}\n`);
    process.stdout.write(
      `${line(['lachan, inspected (school CA)', `${round(throughput.lachanInspected, 0)} req/s`, ratio(throughput.lachanInspected), ''])}\n`,
    );
  }

  const inspection = INSPECTION_SECONDS > 0 ? await httpsInspection() : null;

  const json = {
    bench: 'tls',
    hosts: HOSTS,
    node: process.version,
    firstVisitMs: { median: round(first.median), p95: round(first.p95), max: round(first.max) },
    issueMs: { median: round(issue.median), p95: round(issue.p95) },
    secureContextMs: { median: round(context.median), p95: round(context.p95) },
    cachedSyncUs: round(cached.sync * 1000, 3),
    cachedAsyncUs: round(cachedPromise * 1000, 3),
    burstHostsPerSecond: round((HOSTS / burstMs) * 1000, 0),
    forgeSignMs: { median: round(forgeSign.median), p95: round(forgeSign.p95) },
    handshakeMs: { ec: round(ecHandshake.median), rsa: round(rsaHandshake.median) },
    throughput,
    inspection,
    // The leaf certificate's targets (first visit ≤ 10 ms, cached ≤ 0.1 ms), and the
    // inspection phase's (lachan inspecting ≥ 1.5× squid's rate at ≤ 0.67× its CPU), apart.
    certificateTargetsMet: first.median <= 10 && cachedPromise <= 0.1,
    inspectionTargetsMet:
      inspection === null || inspection.length === 0
        ? null
        : inspection
            .filter((row) => row.target === 'lachan, intercepting + inspecting')
            .every((row) => row.rpsVsSquid !== null && row.cpuVsSquid !== null && row.rpsVsSquid >= 1.5 && row.cpuVsSquid <= 0.67),
  };
  process.stdout.write(`${JSON.stringify(json)}\n`);
}

/** Step 7, printed as it ends: rates and CPU per request, and the ratios to squid's ssl_bump. */
async function httpsInspection(): Promise<readonly HttpsInspectionRow[]> {
  const work = mkdtempSync(path.join(tmpdir(), 'lachan-bench-tls-inspect-'));
  try {
    const { rows, notes } = await measureHttpsInspection({
      work,
      cli: path.join(DIST, 'src/cli/main.js'),
      repo: path.resolve(DIST, '..'),
      bareTunnel: path.join(DIST, 'bench/bare/tunnel.js'),
      baseCli: BASE_DIST === undefined ? undefined : path.join(BASE_DIST, 'src/cli/main.js'),
      sizes: [1024, 102_400],
      pages: pageChoice(process.argv, path.resolve(DIST, '../../shared/data')),
      seconds: INSPECTION_SECONDS,
      reps: INSPECTION_REPS,
      connections: 10,
      log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(
      `\nHTTPS HTML pages read (content_limit), 10 keep-alive connections, targets on CPU 0, median of ${INSPECTION_REPS} × ${INSPECTION_SECONDS} s\n`,
    );
    for (const note of notes) process.stdout.write(`  ${note}\n`);
    for (const row of rows) {
      const versus = row.rpsVsSquid === null || row.cpuVsSquid === null ? '' : `${round(row.rpsVsSquid, 2)}× squid req/s, ${round(row.cpuVsSquid, 2)}× its CPU`;
      process.stdout.write(
        `  ${`${row.size / 1024} KB ${row.target}`.padEnd(52)} ${`${round(row.rps, 0)} req/s`.padEnd(12)} ${`${round(row.cpuUsPerRequest, 0)} µs/req`.padEnd(12)} ${`${round(row.originTlsPerClient, 1)} TLS/conn`.padEnd(13)} ${versus}\n`,
      );
    }
    process.stdout.write('  ratios: medians of the ratios within each repetition; TLS/conn: origin TLS connections per client connection\n');
    process.stdout.write('  targets: lachan ≥ 1.5× squid req/s and ≤ 0.67× its CPU per request\n');
    return rows;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
