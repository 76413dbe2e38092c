import { spawn, type ChildProcess } from 'node:child_process';
import { curl as curlThrough, type CurlResult } from '../helpers/curl.js';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { CertificateAuthority, createCaMaterial } from '../../src/tls/index.js';
import { CLI, REPO_ROOT, makeRulesDir, type RulesFiles } from './rules-dir.js';

export interface RunningProxy {
  readonly port: number;
  readonly adminPort: number;
  readonly process: ChildProcess;
  readonly rulesDir: string;
  readonly dataDir: string;
  /** Every JSON log line so far. */
  readonly logs: Record<string, unknown>[];
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts the real `lachan serve` on ephemeral ports; resolves once it logs "listening". */
export async function startProxy(options: { rules: RulesFiles; hosts?: string; args?: string[]; rulesDir?: string; env?: NodeJS.ProcessEnv; nodeArgs?: string[]; viaShebang?: boolean }): Promise<RunningProxy> {
  const rulesDir = options.rulesDir ?? makeRulesDir(options.rules);
  const work = mkdtempSync(path.join(tmpdir(), 'lachan-proxy-'));
  const dataDir = path.join(work, 'var');
  const hostsFile = path.join(work, 'hosts');
  writeFileSync(hostsFile, options.hosts ?? '');
  // An empty certs folder unless the test brings a CA: ./certs of the repository never leaks in.
  const certsArgs = (options.args ?? []).includes('--certs') ? [] : ['--certs', path.join(work, 'no-ca')];
  const serveArgs = ['serve', '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--workers', '1', '--rules', rulesDir, '--data', dataDir, '--hosts-file', hostsFile, '--log-level', 'debug', ...certsArgs, ...(options.args ?? [])];
  // viaShebang: run the built file itself, as the `lachan` executable runs (its first line names node and its flags).
  const child = spawn(options.viaShebang === true ? CLI : process.execPath, options.viaShebang === true ? serveArgs : [...(options.nodeArgs ?? []), CLI, ...serveArgs], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const waiters: { predicate: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }[] = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    logs.push(line);
    for (const waiter of [...waiters]) {
      if (waiter.predicate(line)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waitForLog = (predicate: (line: Record<string, unknown>) => boolean, timeoutMs = 15_000): Promise<Record<string, unknown>> => {
    const seen = logs.find(predicate);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no such log line within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
      waiters.push({ predicate, resolve: (line) => (clearTimeout(timer), resolve(line)) });
      void exited.then((code) => reject(new Error(`lachan serve exited with ${code}: ${stderr}`)));
    });
  };
  const listening = await waitForLog((line) => line.msg === 'listening');
  return {
    port: listening.port as number,
    adminPort: listening.adminPort as number,
    process: child,
    rulesDir,
    dataDir,
    logs,
    waitForLog,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const defaultHandler: Handler = (req, res) => {
  const body = JSON.stringify({ host: req.headers.host, url: req.url, method: req.method, headers: req.headers });
  res.writeHead(200, { 'content-type': 'application/json', 'x-origin': 'yes' });
  res.end(body);
};

export function startOrigin(handler: Handler = defaultHandler): Promise<{ server: Server; port: number }> {
  const server = createHttpServer(handler);
  return listen(server);
}

let testCa: Promise<{ ca: CertificateAuthority; certPem: string }> | null = null;
/** A CA made for the test run, standing in for a public CA the origin's certificate chains to. */
export function testAuthority(): Promise<{ ca: CertificateAuthority; certPem: string }> {
  testCa ??= createCaMaterial({ schoolName: 'Test origin CA' }).then(async (material) => ({
    ca: await CertificateAuthority.fromPem(material.certPem, material.keyPem),
    certPem: material.certPem,
  }));
  return testCa;
}

export async function startHttpsOrigin(host: string, handler: Handler = defaultHandler): Promise<{ server: Server; port: number; caPem: string }> {
  const { ca, certPem } = await testAuthority();
  const leaf = await ca.issue(host);
  const server = createHttpsServer({ cert: leaf.certPem, key: leaf.keyPem }, handler);
  return { ...(await listen(server)), caPem: certPem };
}

function listen(server: Server): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address !== null ? address.port : 0 });
    });
  });
}

export type { CurlResult } from '../helpers/curl.js';

/** Runs the real curl through the proxy; `extra` are more curl arguments. */
export function curl(proxyPort: number, url: string, extra: string[] = []): Promise<CurlResult> {
  return curlThrough(proxyPort, url, { args: extra });
}
