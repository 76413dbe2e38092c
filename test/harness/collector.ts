import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { withCollectorDatabase } from './collector-store.js';
import { CLI, REPO_ROOT } from './rules.js';

export interface Collector {
  readonly port: number;
  readonly child: ChildProcess;
  readonly url: string;
}

/**
 * Starts `lachan central serve --port 0` and reads the bound port from its "listening" log
 * line; on PostgreSQL (collector-store.ts) with the data folder's database.
 */
export async function startCollector(dataDir: string, extra: string[] = [], port = 0): Promise<Collector> {
  const child = spawn(process.execPath, [CLI, ...withCollectorDatabase(['central', 'serve', '--port', String(port), '--data', dataDir, ...extra])], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const bound = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`collector exited with ${code} before listening`)));
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number; level?: number };
        if (entry.msg === 'listening' && typeof entry.port === 'number') resolve(entry.port);
        // Errors the collector logs reach the test's output: a 500 says why.
        if ((entry.level ?? 0) >= 50) process.stderr.write(`collector: ${line}\n`);
      } catch {
        // not a log line
      }
    });
  });
  return { port: bound, child, url: `http://127.0.0.1:${bound}` };
}

export async function stopCollector(collector: Collector): Promise<void> {
  if (collector.child.exitCode !== null) return;
  const exited = new Promise((resolve) => collector.child.once('exit', resolve));
  collector.child.kill('SIGTERM');
  await exited;
}
