import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

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
