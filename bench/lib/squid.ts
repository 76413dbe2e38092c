/**
 * squid as the benches' rival: the configuration they share (one worker, no cache,
 * loopback clients only, its files in one folder) and starting it pinned to a CPU.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { waitForPort } from './proc.js';

export const SQUID = '/usr/sbin/squid';

/** squid.conf lines after a bench's own (http_port and the like): what makes the comparison fair. */
export function squidCommonConfig(dir: string): string {
  return `workers 1
cache deny all
cache_mem 8 MB
http_access allow localhost
http_access deny all
access_log none
cache_store_log none
cache_log ${path.join(dir, 'cache.log')}
pid_filename ${path.join(dir, 'squid.pid')}
coredump_dir ${dir}
shutdown_lifetime 0 seconds
forwarded_for delete
`;
}

/** Writes DIR/squid.conf, runs squid in the foreground on `cpu`, and resolves once `port` accepts connections. */
export async function startSquid(dir: string, config: string, port: number, cpu: number | string = 0): Promise<ChildProcess> {
  writeFileSync(path.join(dir, 'squid.conf'), config);
  const squid = spawn('taskset', ['-c', String(cpu), SQUID, '-N', '-f', path.join(dir, 'squid.conf')], { stdio: 'ignore' });
  try {
    await waitForPort(port, 20_000);
  } catch (error) {
    squid.kill('SIGTERM');
    throw error;
  }
  return squid;
}
