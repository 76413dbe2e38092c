/**
 * Starting the servers a bench measures, `lachan serve` above all, in one way: spawn
 * (pinned to CPUs with taskset when asked), wait for the JSON line that says it listens,
 * stop with SIGTERM and wait for the exit. test/harness/gateway.ts does the same for the
 * tests, with what they need besides (log capture, a shebang run).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { PROXY_V8_FLAGS, withProxyMallocEnv } from '../../src/cli/v8-flags.js';

export type LogLine = Record<string, unknown>;

export interface StartOptions {
  /** taskset's CPU list (0, '0,1'); unpinned when absent. */
  readonly cpu?: number | string;
  /** Added to this process's environment. */
  readonly env?: NodeJS.ProcessEnv;
  /** Which JSON line of stdout means "ready" (default: lachan's `{"msg":"listening"}`). */
  readonly ready?: (line: LogLine) => boolean;
  /** Every stdout line as it comes, JSON or not (log lines, --trace-gc). */
  readonly onLine?: (text: string) => void;
}

export interface StartedServer {
  readonly child: ChildProcess;
  /** The line `ready` accepted. */
  readonly line: LogLine;
  /** SIGTERM, then resolves once the process exited. */
  stop(): Promise<void>;
}

export const isListening = (line: LogLine): boolean => line.msg === 'listening';

/** Resolves once `child` has exited, asking it to with SIGTERM if it still runs. */
export function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** Spawns `command` and resolves with the first JSON line of its stdout that `ready` accepts. */
export async function startServer(command: string, args: readonly string[], options: StartOptions = {}): Promise<StartedServer> {
  const [file, argv] = options.cpu === undefined ? [command, args] : ['taskset', ['-c', String(options.cpu), command, ...args]];
  const child = spawn(file, argv, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: options.env === undefined ? process.env : { ...process.env, ...options.env },
  });
  const ready = options.ready ?? isListening;
  const line = await new Promise<LogLine>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${command} ${args.join(' ')} exited with ${code} before it was ready`)));
    // Read to the end, not only up to the ready line: a full pipe would block the server.
    createInterface({ input: child.stdout! }).on('line', (text) => {
      options.onLine?.(text);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return; // not a JSON line
      }
      if (typeof parsed === 'object' && parsed !== null && ready(parsed as LogLine)) resolve(parsed as LogLine);
    });
  });
  return { child, line, stop: () => stopProcess(child) };
}

/** What a `lachan serve` is started with, besides node and the CLI. */
export interface ServeFiles {
  readonly rules: string;
  readonly data: string;
  readonly hosts?: string;
  /** `--certs`; lachan's default (./certs) when absent. */
  readonly certs?: string;
  readonly workers?: number;
  /** More `lachan serve` options (--central, --log-level …). */
  readonly args?: readonly string[];
}

export interface ServeOptions extends ServeFiles {
  /** dist/src/cli/main.js of the build measured. */
  readonly cli: string;
  /** Node options after the proxy's V8 flags (src/cli/v8-flags.ts), e.g. --trace-gc. */
  readonly nodeArgs?: readonly string[];
  /** Without the proxy's V8 flags, as bare node runs it. */
  readonly plainNode?: boolean;
}

/** `lachan serve` and its options (what follows the CLI's path) on ephemeral loopback ports; test/harness/gateway.ts uses it too. */
export function serveCommand(serve: ServeFiles): string[] {
  return [
    'serve',
    '--workers',
    String(serve.workers ?? 1),
    '--port',
    '0',
    '--admin-port',
    '0',
    '--host',
    '127.0.0.1',
    '--rules',
    serve.rules,
    '--data',
    serve.data,
    ...(serve.hosts === undefined ? [] : ['--hosts-file', serve.hosts]),
    ...(serve.certs === undefined ? [] : ['--certs', serve.certs]),
    ...(serve.args ?? []),
  ];
}

/** `node` arguments for `lachan serve`: the proxy's V8 flags unless `plainNode`, then the CLI and serveCommand. */
export function serveArgs(serve: ServeOptions): string[] {
  return [...(serve.plainNode === true ? [] : PROXY_V8_FLAGS), ...(serve.nodeArgs ?? []), serve.cli, ...serveCommand(serve)];
}

export interface RunningServe extends StartedServer {
  readonly port: number;
  readonly adminPort: number;
}

/** Starts `lachan serve` and resolves once it listens. */
export async function startServe(serve: ServeOptions, options: StartOptions = {}): Promise<RunningServe> {
  // glibc's settings too, as the executable's first line and the systemd unit give them (src/cli/v8-flags.ts).
  const env = serve.plainNode === true ? options.env : { ...withProxyMallocEnv(process.env), ...options.env };
  const started = await startServer(process.execPath, serveArgs(serve), { ...options, env });
  return { ...started, port: started.line.port as number, adminPort: started.line.adminPort as number };
}
