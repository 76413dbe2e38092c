/**
 * A bare forward proxy with undici as upstream client: the floor any Node proxy pays
 * (no decisions, no pages, no limits). Written the way an expert would: one shared
 * keep-alive Agent (a Pool per origin, `pipelining: 1`), undici's `dispatch` with a
 * handler that writes chunks straight into the ServerResponse (no body stream, no
 * pipeline), raw header arrays passed through, and only the hop-by-hop headers a
 * benchmark client sends dropped. `node dist/bench/bare/undici-proxy.js [PORT]`
 * prints `{"port":N}` once listening.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent } from 'undici';

const agent = new Agent({ connections: 128, pipelining: 1, keepAliveTimeout: 30_000 });
const HOP_BY_HOP = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
]);

function requestHeaders(req: IncomingMessage, host: string): string[] {
  const raw = req.rawHeaders;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === 'host' || HOP_BY_HOP.has(name)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  out.push('host', host);
  return out;
}

function responseHeaders(raw: Buffer[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    if (HOP_BY_HOP.has(name.toLowerCase())) continue;
    out.push(name, raw[i + 1]!.toString('latin1'));
  }
  return out;
}

class Relay {
  resume: (() => void) | null = null;
  abort: ((error: Error) => void) | null = null;
  constructor(private readonly res: ServerResponse) {
    res.on('drain', () => this.resume?.());
    // A client gone mid-response must not leave the upstream socket busy.
    res.once('close', () => {
      if (!res.writableFinished) this.abort?.(new Error('client went away'));
    });
  }
  onConnect(abort: (error: Error) => void): void {
    this.abort = abort;
  }
  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    if (status < 200) return true;
    this.resume = resume;
    this.res.writeHead(status, responseHeaders(raw));
    return true;
  }
  onData(chunk: Buffer): boolean {
    return this.res.write(chunk);
  }
  onComplete(): void {
    this.res.end();
  }
  onError(): void {
    if (this.res.headersSent) this.res.destroy();
    else this.res.writeHead(502).end();
  }
}

const server = createServer((req, res) => {
  let url: URL;
  try {
    url = new URL(req.url ?? '');
  } catch {
    res.writeHead(400).end();
    return;
  }
  const bodyless = req.method === 'GET' || req.method === 'HEAD';
  agent.dispatch(
    { origin: url.origin, path: url.pathname + url.search, method: req.method as 'GET', headers: requestHeaders(req, url.host), body: bodyless ? null : req },
    new Relay(res) as never,
  );
});
server.keepAliveTimeout = 30_000;
// Exit cleanly on SIGTERM so `node --cpu-prof` can write its profile.
process.once('SIGTERM', () => process.exit(0));
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  console.log(JSON.stringify({ port: (server.address() as { port: number }).port }));
});
