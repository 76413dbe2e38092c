import type { ChildProcess } from 'node:child_process';
import { serveArgs, startServer } from './serve.js';

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
  return startServer(command, args, { cpu, ready: predicate });
}

/**
 * `node` arguments for `lachan serve` as the benches run it: the proxy's V8 flags, ephemeral
 * loopback ports, `workers` workers, and the rules, data folder and hosts file given.
 */
export function lachanServeArgs(cli: string, files: { rules: string; data: string; hosts: string }, workers = 1, extra: readonly string[] = []): string[] {
  return serveArgs({ cli, ...files, workers, args: extra });
}
