import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { startHttpOrigin, type Origin } from './origins.js';
import { CLI, REPO_ROOT } from './rules.js';

/** An HTTP server publishing one list the way list hosts do: ETag, Last-Modified, 304 on a match. */
export interface ListOrigin extends Origin {
  readonly url: string;
  /** Publishes a new body (a new ETag), or a status to answer with instead. */
  publish(body: string, status?: number): void;
  /** Requests that carried If-None-Match and got 304. */
  notModified(): number;
}

export async function startListOrigin(initial: string): Promise<ListOrigin> {
  let body = initial;
  let status = 200;
  let etag = tagOf(body);
  const lastModified = new Date(Date.UTC(2026, 10, 1)).toUTCString();
  let unchanged = 0;
  const origin = await startHttpOrigin((req, res) => {
    if (status !== 200) {
      res.writeHead(status, { 'content-type': 'text/plain' });
      return void res.end('error');
    }
    if (req.headers['if-none-match'] === etag) {
      unchanged++;
      res.writeHead(304, { etag });
      return void res.end();
    }
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', etag, 'last-modified': lastModified, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  return {
    ...origin,
    url: `http://127.0.0.1:${origin.port}/list.txt`,
    publish(next: string, nextStatus = 200) {
      body = next;
      status = nextStatus;
      etag = tagOf(body);
    },
    notModified: () => unchanged,
  };
}

function tagOf(body: string): string {
  return `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
}

/** A hosts-format list of `count` gambling domains `prefix-N.test`. */
export function hostsList(count: number, prefix = 'casino', from = 0): string {
  const lines = ['# test hosts list', '127.0.0.1 localhost'];
  for (let i = from; i < from + count; i++) lines.push(`0.0.0.0 ${prefix}-${i}.test`);
  return `${lines.join('\n')}\n`;
}

/**
 * Runs the built CLI without blocking the test process (whose servers the command
 * talks to), as a user or cron would.
 */
export function lachanAsync(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
