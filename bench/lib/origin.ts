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
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import path from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

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

/**
 * A harmless news page of `size` bytes: the dantri.com.vn articles of `data`/vi-text in
 * order, as paragraphs. Real pages compress 4 or 5 to 1; the lesson page's one line
 * repeated compresses 170 to 1, so compressed-page figures take this one.
 */
export function newsPage(size: number, data: string): Buffer {
  const lines = readFileSync(path.join(data, 'vi-text/uts-unc-dantri/unc-news-600docs.txt'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'));
  const head = '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Tin tức</title></head><body>';
  const tail = '</body></html>';
  let html = head;
  for (let i = 0; Buffer.byteLength(html) < size; i++) html += `<p>${lines[i % lines.length]}</p>\n`;
  // Cut to size on a character boundary (a cut sequence decodes to U+FFFD, dropped).
  return Buffer.from(
    `${Buffer.from(html)
      .subarray(0, size - tail.length)
      .toString('utf8')
      .replace(/\uFFFD$/u, '')}${tail}`,
  );
}

export interface PageChoice {
  /** `lesson` (default) or `news` (needs `data`). */
  readonly pages?: string;
  /** Content-Encoding: none (default), `gzip` or `br`. */
  readonly encoding?: string;
  /** The folder of vi-text (../shared/data). */
  readonly data?: string;
}

/** The pages options of the content benches (`--pages`, `--encoding`, `--data`), checked. */
export function pageChoice(argv: readonly string[], defaultData: string): PageChoice {
  const value = (name: string): string | undefined => {
    const at = argv.indexOf(`--${name}`);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const choice = { pages: value('pages') ?? 'lesson', encoding: value('encoding'), data: value('data') ?? defaultData };
  if (choice.pages !== 'lesson' && choice.pages !== 'news') throw new Error('--pages: lesson or news');
  if (choice.encoding !== undefined && choice.encoding !== 'gzip' && choice.encoding !== 'br') throw new Error('--encoding: gzip or br');
  return choice;
}

/** A harmless HTML page of `size` bytes (before compression) as the origin sends it, with its Content-Encoding. */
export function servedPage(size: number, choice: PageChoice = {}): { body: Buffer; encoding: string | undefined } {
  const page = choice.pages === 'news' ? newsPage(size, choice.data!) : lessonPage(size);
  // Brotli at quality 5: what servers use for pages made per request.
  if (choice.encoding === 'gzip') return { body: gzipSync(page), encoding: 'gzip' };
  if (choice.encoding === 'br') return { body: brotliCompressSync(page, { params: { [constants.BROTLI_PARAM_QUALITY]: 5 } }), encoding: 'br' };
  return { body: page, encoding: undefined };
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
