import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { serveCommand } from '../../bench/lib/serve.js';
import { CLI, REPO_ROOT, makeRulesDir, type RulesFiles } from './rules.js';

export type LogLine = Record<string, unknown>;

export interface RunningGateway {
  readonly port: number;
  readonly adminPort: number;
  readonly child: ChildProcess;
  readonly rulesDir: string;
  readonly dataDir: string;
  readonly hostsFile: string;
  /** Every JSON log line (stdout) so far. */
  readonly logs: LogLine[];
  stderr(): string;
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends a signal and waits for the exit code (SIGKILL after `killAfterMs`). */
  stop(signal?: NodeJS.Signals, killAfterMs?: number): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

export interface GatewayOptions {
  /** Files of a fresh rules folder (ignored when `rulesDir` is given). */
  readonly rules?: RulesFiles;
  readonly rulesDir?: string;
  /** /etc/hosts-format text for --hosts-file. */
  readonly hosts?: string;
  readonly workers?: number;
  /** More `lachan serve` arguments. */
  readonly args?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Node flags before the CLI (e.g. --expose-gc). */
  readonly nodeArgs?: readonly string[];
  /** Run the built file itself, as the `lachan` executable runs (its first line names node and its flags). */
  readonly viaShebang?: boolean;
  /** `--log-level`; debug by default so tests can wait for any line. */
  readonly logLevel?: string;
}

/**
 * Starts the real `lachan serve` (built CLI in dist/) on ephemeral loopback ports and
 * resolves once it logs `{"msg":"listening","port":N,"adminPort":M}`.
 */
export async function startGateway(options: GatewayOptions = {}): Promise<RunningGateway> {
  const rulesDir = options.rulesDir ?? makeRulesDir(options.rules ?? {});
  const work = mkdtempSync(path.join(tmpdir(), 'lachan-serve-'));
  const dataDir = path.join(work, 'var');
  const hostsFile = path.join(work, 'hosts');
  writeFileSync(hostsFile, options.hosts ?? '');
  const serveArgs = serveCommand({
    rules: rulesDir,
    data: dataDir,
    hosts: hostsFile,
    workers: options.workers ?? 1,
    // No interception unless the test brings a CA: never pick up the repository's ./certs.
    certs: options.args?.includes('--certs') ? undefined : path.join(work, 'no-certs'),
    args: ['--log-level', options.logLevel ?? 'debug', ...(options.args ?? [])],
  });
  const child =
    options.viaShebang === true
      ? spawn(CLI, serveArgs, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } })
      : spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, ...serveArgs], {
          cwd: REPO_ROOT,
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, ...options.env },
        });
  const logs: LogLine[] = [];
  const waiters = new Set<{ predicate: (line: LogLine) => boolean; resolve: (line: LogLine) => void }>();
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      return;
    }
    logs.push(line);
    for (const waiter of waiters) {
      if (waiter.predicate(line)) {
        waiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal === null ? null : -1))));
  const waitForLog = (predicate: (line: LogLine) => boolean, timeoutMs = 15_000): Promise<LogLine> => {
    const seen = logs.find(predicate);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = {
        predicate,
        resolve: (line: LogLine) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no matching log line within ${timeoutMs} ms\nstdout: ${JSON.stringify(logs)}\nstderr: ${stderr}`));
      }, timeoutMs);
      waiters.add(waiter);
      void exited.then((code) => {
        if (waiters.delete(waiter)) {
          clearTimeout(timer);
          reject(new Error(`lachan serve exited (${code}) before the log line\nstderr: ${stderr}`));
        }
      });
    });
  };
  const listening = await waitForLog((line) => line.msg === 'listening', 30_000);
  return {
    port: listening.port as number,
    adminPort: listening.adminPort as number,
    child,
    rulesDir,
    dataDir,
    hostsFile,
    logs,
    stderr: () => stderr,
    waitForLog,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM', killAfterMs = 10_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** A policy.yaml with one profile per entry; handy for small test rule sets. */
export function policyYaml(options: {
  readonly defaultProfile: string;
  readonly profiles: Readonly<
    Record<
      string,
      {
        name: string;
        blockCategories?: readonly string[];
        allowDomains?: readonly string[];
        blockDomains?: readonly string[];
        blockIpLiterals?: boolean;
        inspect?: boolean;
      }
    >
  >;
  readonly connectPorts?: readonly number[];
  readonly clients?: readonly { cidr: string; profile: string }[];
  readonly extra?: string;
}): string {
  const lines = ['version: 1', `default_profile: ${options.defaultProfile}`, 'profiles:'];
  for (const [id, p] of Object.entries(options.profiles)) {
    lines.push(`  ${id}:`, `    name: ${JSON.stringify(p.name)}`, `    block_categories: [${(p.blockCategories ?? []).join(', ')}]`);
    if (p.allowDomains) lines.push(`    allow_domains: [${p.allowDomains.join(', ')}]`);
    if (p.blockDomains) lines.push(`    block_domains: [${p.blockDomains.join(', ')}]`);
    if (p.blockIpLiterals !== undefined) lines.push(`    block_ip_literals: ${p.blockIpLiterals}`);
    if (p.inspect !== undefined) lines.push(`    inspect: ${p.inspect}`);
  }
  if (options.connectPorts) lines.push(`connect_ports: [${options.connectPorts.join(', ')}]`);
  if (options.clients) {
    lines.push('clients:');
    for (const c of options.clients) lines.push(`  - cidr: ${c.cidr}`, `    profile: ${c.profile}`);
  }
  if (options.extra) lines.push(options.extra);
  return `${lines.join('\n')}\n`;
}
