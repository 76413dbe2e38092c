import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CertificateAuthority, createCaMaterial, initCa } from '../../src/tls/index.js';
import { httpsThroughProxy } from './https-load.js';
import { median } from './stats.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(DIST, 'src/cli/main.js');
const SITE = 'site.bench';

export interface TunnelThroughput {
  readonly bareTunnel: number;
  readonly lachanTunnelled: number;
  readonly lachanInspected: number;
}

/** Starts a process that prints a JSON line with its port (bare tunnel) or lachan's "listening" line. */
async function startProcess(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { port?: number; msg?: string };
        if (typeof entry.port === 'number' && (entry.msg === undefined || entry.msg === 'listening')) resolve(entry.port);
      } catch {
        // not JSON
      }
    });
  });
  return { child, port };
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
  const lachanArgs = (rulesDir: string, certsDir: string): string[] => [
    CLI,
    'serve',
    '--workers',
    '1',
    '--port',
    '0',
    '--admin-port',
    '0',
    '--host',
    '127.0.0.1',
    '--log-level',
    'warn',
    '--rules',
    rulesDir,
    '--data',
    path.join(work, `var-${path.basename(rulesDir)}`),
    '--hosts-file',
    path.join(work, 'hosts'),
    '--certs',
    certsDir,
  ];
  // pino at warn prints no "listening" line: ask for info on stdout instead.
  const info = (args: string[]): string[] => args.map((a) => (a === 'warn' ? 'info' : a));
  const processes = [
    await startProcess([path.join(DIST, 'bench/bare/tunnel.js')]),
    await startProcess(info(lachanArgs(rules(false), path.join(work, 'no-ca')))),
    await startProcess(info(lachanArgs(rules(true), certs)), { NODE_EXTRA_CA_CERTS: originCaFile }),
  ];
  const samples: number[][] = [[], [], []];
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (let i = 0; i < processes.length; i++) {
        const result = await httpsThroughProxy({
          proxyPort: processes[i]!.port,
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
    for (const { child } of processes) child.kill('SIGTERM');
    origin.close();
    rmSync(work, { recursive: true, force: true });
  }
  return { bareTunnel: median(samples[0]!), lachanTunnelled: median(samples[1]!), lachanInspected: median(samples[2]!) };
}
