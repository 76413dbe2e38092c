import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CertificateAuthority, createCaMaterial, initCa } from '../../src/tls/index.js';
import { httpsThroughProxy } from './https-load.js';
import { type ServeOptions, startServe, startServer } from './serve.js';
import { median } from './stats.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(DIST, 'src/cli/main.js');
const SITE = 'site.bench';

export interface TunnelThroughput {
  readonly bareTunnel: number;
  readonly lachanTunnelled: number;
  readonly lachanInspected: number;
}

/**
 * HTTPS requests/s of one 1 KB page through a bare CONNECT tunnel, through lachan
 * tunnelling, and through lachan intercepting with the school CA (decrypt, decide,
 * forward over a verified upstream connection): interleaved repetitions, medians.
 */
export async function measureTunnelThroughput(seconds: number, reps: number, connections: number): Promise<TunnelThroughput> {
  const work = mkdtempSync(path.join(tmpdir(), 'lachan-bench-tls-'));
  const originCa = await createCaMaterial({ schoolName: 'Bench origin CA' });
  const leaf = await (await CertificateAuthority.fromPem(originCa.certPem, originCa.keyPem)).issue(SITE);
  const body = Buffer.alloc(1024, 'a');
  const origin = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (_req, res) => res.writeHead(200, { 'content-length': body.length }).end(body));
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const originPort = (origin.address() as { port: number }).port;
  const originCaFile = path.join(work, 'origin-ca.pem');
  writeFileSync(originCaFile, originCa.certPem);
  const certs = path.join(work, 'certs');
  await initCa(certs, { schoolName: 'Bench school' });
  const schoolCaPem = (await import('node:fs')).readFileSync(path.join(certs, 'ca.crt'), 'utf8');
  const rules = (inspect: boolean): string => {
    const dir = path.join(work, inspect ? 'rules-inspect' : 'rules-tunnel');
    mkdirSync(path.join(dir, 'categories/gambling'), { recursive: true });
    writeFileSync(path.join(dir, 'categories/gambling/domains'), 'bet.bench\n');
    writeFileSync(
      path.join(dir, 'policy.yaml'),
      `version: 1\ndefault_profile: p\nprofiles:\n  p:\n    block_categories: [gambling]\n    inspect: ${inspect}\nconnect_ports: [443, ${originPort}]\nintercept: always\n`,
    );
    return dir;
  };
  writeFileSync(path.join(work, 'hosts'), `127.0.0.1 ${SITE}\n`);
  // Measured as first written: plain node, without the proxy's V8 flags.
  const lachan = (rulesDir: string, certsDir: string): ServeOptions => ({
    cli: CLI,
    rules: rulesDir,
    data: path.join(work, `var-${path.basename(rulesDir)}`),
    hosts: path.join(work, 'hosts'),
    certs: certsDir,
    plainNode: true,
  });
  const processes = [
    await startServer(process.execPath, [path.join(DIST, 'bench/bare/tunnel.js')], { ready: (line) => typeof line.port === 'number' }),
    await startServe(lachan(rules(false), path.join(work, 'no-ca'))),
    await startServe(lachan(rules(true), certs), { env: { NODE_EXTRA_CA_CERTS: originCaFile } }),
  ];
  const samples: number[][] = [[], [], []];
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (let i = 0; i < processes.length; i++) {
        const result = await httpsThroughProxy({
          proxyPort: processes[i]!.line.port as number,
          host: SITE,
          port: originPort,
          path: '/',
          ca: [originCa.certPem, schoolCaPem],
          connections,
          seconds,
        });
        samples[i]!.push(result.requestsPerSecond);
      }
    }
  } finally {
    await Promise.all(processes.map((started) => started.stop()));
    origin.close();
    rmSync(work, { recursive: true, force: true });
  }
  return { bareTunnel: median(samples[0]!), lachanTunnelled: median(samples[1]!), lachanInspected: median(samples[2]!) };
}
