/**
 * `lachan central serve` for a bench (bench:ingest, bench:province), started as serve.ts
 * starts every server: spawned, ready at its `{"msg":"listening"}` line, on an ephemeral
 * loopback port.
 */
import { type StartedServer, startServer } from './serve.js';

export interface CollectorOptions {
  /** dist/src/cli/main.js of the build measured. */
  readonly cli: string;
  readonly data: string;
  /** `--database` (a postgres:// URL); the SQLite file in `data` when absent. */
  readonly database?: string;
  /** `--rate-limit`: ingest requests a school may make a second; a bench sets it above its load. */
  readonly rateLimit: number;
  /** Node options before the CLI (--cpu-prof …). */
  readonly nodeArgs?: readonly string[];
}

export interface RunningCollector extends StartedServer {
  readonly url: string;
}

/** How long a collector has to exit on SIGTERM before it is killed: once, after a full bench:province run, two outlived it (not understood yet). */
const EXIT_GRACE_MS = 10_000;

export async function startCollector(options: CollectorOptions): Promise<RunningCollector> {
  const args = [
    ...(options.nodeArgs ?? []),
    options.cli,
    'central',
    'serve',
    '--port',
    '0',
    '--data',
    options.data,
    ...(options.database === undefined ? [] : ['--database', options.database]),
    '--rate-limit',
    String(options.rateLimit),
  ];
  const started = await startServer(process.execPath, args);
  const { child } = started;
  return {
    ...started,
    url: `http://127.0.0.1:${started.line.port as number}`,
    stop: async () => {
      const kill = setTimeout(() => child.kill('SIGKILL'), EXIT_GRACE_MS);
      await started.stop();
      clearTimeout(kill);
    },
  };
}
