import { execFileSync } from 'node:child_process';
import type { BlockEventInput } from '../../src/events/types.js';
import { CLI } from './rules.js';

let visits = 0;
/** A block on a host of its own, so that the gateway's log does not fold it into an earlier visit. */
export function blockEvent(overrides: Partial<BlockEventInput> = {}): BlockEventInput {
  visits++;
  return {
    time: Date.now(),
    profile: 'tieu-hoc',
    category: 'gambling',
    reason: 'domain',
    rule: 'nhacai.example',
    source: 'rules/categories/gambling/domains:3',
    host: `www${visits}.nhacai.example`,
    path: '/dang-ky',
    method: 'GET',
    clientAddress: '10.10.0.25',
    ...overrides,
  };
}

/**
 * The gateway's stored events, as `lachan logs --json` prints them, polled until one
 * matches `wanted` (events are written in batches) or about five seconds have passed.
 */
export async function storedEventsUntil(dataDir: string, wanted: (event: Record<string, unknown>) => boolean): Promise<Record<string, unknown>[]> {
  let events: Record<string, unknown>[] = [];
  for (let attempt = 0; attempt < 20 && !events.some(wanted); attempt++) {
    await new Promise((r) => setTimeout(r, 250));
    const out = execFileSync(process.execPath, [CLI, 'logs', '--data', dataDir, '--json'], { encoding: 'utf8' });
    events = out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  return events;
}
