import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { PROXY_V8_FLAGS } from '../../src/cli/v8-flags.js';

/**
 * Starts `command` pinned to `cpu` (taskset) and resolves with the first JSON line of its
 * stdout that `predicate` accepts (a server's `listening` line, an origin's port).
 */
export async function startPinned(
  cpu: number | string,
  command: string,
  args: readonly string[],
  predicate: (line: Record<string, unknown>) => boolean = () => true,
): Promise<{ child: ChildProcess; line: Record<string, unknown> }> {
  const child = spawn('taskset', ['-c', String(cpu), command, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const line = await new Promise<Record<string, unknown>>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${command} ${args.join(' ')} exited with ${code}`)));
    lines.on('line', (text) => {
      try {
        const parsed = JSON.parse(text) as Record<string, unknown>;
        if (predicate(parsed)) resolve(parsed);
      } catch {
        // not a JSON line
      }
    });
  });
  return { child, line };
}

/**
 * `node` arguments for `lachan serve` as the benches run it: the proxy's V8 flags, ephemeral
 * loopback ports, `workers` workers, and the rules, data folder and hosts file given.
 */
export function lachanServeArgs(cli: string, files: { rules: string; data: string; hosts: string }, workers = 1, extra: readonly string[] = []): string[] {
  return [
    ...PROXY_V8_FLAGS,
    cli,
    'serve',
    '--workers',
    String(workers),
    '--port',
    '0',
    '--admin-port',
    '0',
    '--host',
    '127.0.0.1',
    '--rules',
    files.rules,
    '--data',
    files.data,
    '--hosts-file',
    files.hosts,
    ...extra,
  ];
}
