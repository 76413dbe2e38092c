/**
 * The bench origin: a raw `net` server that answers every keep-alive HTTP/1.1 GET with
 * a precomputed response (`/<size>` → `size` bytes). node:http spends most of a core
 * parsing and building headers, so an http origin sharing CPU 1 with the load generator
 * capped "origin direct" at ~15 k req/s and would have measured itself, not the proxies.
 * This one only scans for the end of each request head (pipelined heads too) and
 * writes one cached buffer per request. Requests with a body are not supported (the
 * bench sends only GETs). `/html/<size>` is a harmless Vietnamese lesson page of that
 * size (text/html), for the content inspection phases.
 */
import { createServer, type Socket } from 'node:net';

const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_BODY = 10_000_000;
const responses = new Map<string, Buffer>();

/** A lesson page of `size` bytes: harmless Vietnamese text, so an inspecting proxy reads and passes every byte. */
export function lessonPage(size: number): Buffer {
  const head = '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Bài học</title></head><body>';
  const line = '<p>Hôm nay chúng em học về cây xanh, dòng sông và những đám mây trên bầu trời quê hương.</p>\n';
  const tail = '</body></html>';
  let html = head;
  while (Buffer.byteLength(html + line + tail) <= size) html += line;
  return Buffer.from(html + ' '.repeat(Math.max(0, size - Buffer.byteLength(html + tail))) + tail);
}

function responseFor(path: string): Buffer {
  let response = responses.get(path);
  if (response === undefined) {
    const html = path.startsWith('/html/');
    const size = Number(path.slice(html ? 6 : 1));
    const length = Number.isInteger(size) && size >= 0 && size <= MAX_BODY ? size : 0;
    const body = html ? lessonPage(length) : Buffer.alloc(length, 'x');
    const type = html ? 'text/html; charset=utf-8' : 'application/octet-stream';
    const head = `HTTP/1.1 200 OK\r\ncontent-type: ${type}\r\ncontent-length: ${body.length}\r\nconnection: keep-alive\r\nkeep-alive: timeout=60\r\n\r\n`;
    response = Buffer.concat([Buffer.from(head, 'latin1'), body]);
    responses.set(path, response);
  }
  return response;
}

/** The request path of one head: `GET /1024 HTTP/1.1` or the absolute form's path. */
function pathOf(head: Buffer): string {
  const firstSpace = head.indexOf(0x20);
  const secondSpace = head.indexOf(0x20, firstSpace + 1);
  let target = head.toString('latin1', firstSpace + 1, secondSpace);
  if (target.charCodeAt(0) !== 0x2f) {
    const slash = target.indexOf('/', target.indexOf('//') + 2);
    target = slash === -1 ? '/' : target.slice(slash);
  }
  return target;
}

function serve(socket: Socket): void {
  let pending: Buffer | null = null;
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    const data = pending === null ? chunk : Buffer.concat([pending, chunk]);
    let start = 0;
    for (;;) {
      const end = data.indexOf(HEAD_END, start);
      if (end === -1) break;
      socket.write(responseFor(pathOf(data.subarray(start, end))));
      start = end + HEAD_END.length;
    }
    pending = start === data.length ? null : data.subarray(start);
    if (pending !== null && pending.length > 64 * 1024) socket.destroy();
  });
}

export function startOrigin(onListening: (port: number) => void): void {
  const server = createServer({ noDelay: true }, serve);
  server.listen(0, '127.0.0.1', () => onListening((server.address() as { port: number }).port));
}
