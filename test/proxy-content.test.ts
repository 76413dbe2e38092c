/**
 * Content inspection through the proxy (docs/contract.md §8): the real gateway on
 * loopback with the shipped phrases, real HTTP and HTTPS origins serving the corpus
 * pages of test/fixtures/content, curl and Node's HTTP client as browsers.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  REPO_ROOT,
  curl,
  encodeWindows1258,
  fixture,
  interceptionFiles,
  type Origin,
  type RunningGateway,
  startGateway,
  startHttpOrigin,
  startHttpsOrigin,
  storedEventsUntil,
  TEACHER_ADDRESS,
  contentPolicy,
} from './harness/index.js';

const TEACHER = TEACHER_ADDRESS;
const POLICY = contentPolicy;

const GAMBLING_PHRASES = readFileSync(path.join(REPO_ROOT, 'rules/categories/gambling/phrases'), 'utf8');
const HARMFUL = Buffer.from(fixture('vi-gambling-site.html'));
const HARMLESS = Buffer.from(fixture('vi-news-gambling-arrest.html'));
/** A PNG signature, then the words of a betting site: images are never read. */
const IMAGE = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), HARMFUL, Buffer.from([0, 1, 2, 255])]);
/** 70 KB of a harmless lesson, then a betting site's text: past the 64 KiB held back. */
const LATE_HEAD = Buffer.from(
  `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Bài học</title></head><body>${'<p>Hôm nay chúng em học về cây xanh, dòng sông và những đám mây trên bầu trời.</p>\n'.repeat(800)}`,
);
const LATE_TAIL = Buffer.from(`${fixture('vi-gambling-site.html').replace(/^[\s\S]*<body>/, '<div>')}`);

/** Each page as an origin sends it, by path. */
function serve(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  const html = { 'content-type': 'text/html; charset=utf-8', 'x-origin': 'kept', etag: '"v1"' };
  if (url === '/harmful') return void res.writeHead(200, { ...html, 'content-length': HARMFUL.length }).end(HARMFUL);
  if (url === '/harmless') return void res.writeHead(200, { ...html, 'content-length': HARMLESS.length }).end(HARMLESS);
  if (url === '/harmful.gz') {
    const body = zlib.gzipSync(HARMFUL);
    return void res.writeHead(200, { ...html, 'content-encoding': 'gzip', 'content-length': body.length }).end(body);
  }
  if (url === '/harmful.br') {
    const body = zlib.brotliCompressSync(HARMFUL);
    return void res.writeHead(200, { ...html, 'content-encoding': 'br', 'content-length': body.length }).end(body);
  }
  if (url === '/harmful-1258') {
    const legacy = fixture('vi-gambling-site.html').replace(
      '<meta charset="utf-8">',
      '<meta http-equiv="Content-Type" content="text/html; charset=windows-1258">',
    );
    const body = encodeWindows1258(legacy);
    return void res.writeHead(200, { 'content-type': 'text/html', 'content-length': body.length }).end(body);
  }
  if (url === '/image.png') return void res.writeHead(200, { 'content-type': 'image/png', 'content-length': IMAGE.length }).end(IMAGE);
  if (url === '/late') {
    res.writeHead(200, { ...html, 'content-length': LATE_HEAD.length + LATE_TAIL.length });
    res.write(LATE_HEAD);
    // The tail comes later, as a slow page's would: the prefix has been judged and sent by then.
    setTimeout(() => res.end(LATE_TAIL), 300);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<p>kết quả cho ${url}</p>`);
}

interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** Node's HTTP client through the proxy, keeping the body's bytes as they came (no decoding). */
function fetchRaw(proxyPort: number, url: string, localAddress?: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: proxyPort, path: url, headers: { host: new URL(url).host, connection: 'close' }, localAddress },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The phrase the block page names, which must be one of the rules' phrases. */
function namedPhrase(html: string): string {
  const match = /<dt>Cụm từ<\/dt><dd>([^<]+)<\/dd>/.exec(html);
  expect(match).not.toBeNull();
  return match![1]!;
}

function isGamblingPhrase(phrase: string): boolean {
  return GAMBLING_PHRASES.split('\n').some((line) => line.replace(/^-?\d+\s+/, '') === phrase);
}

let origin: Origin;
let tlsOrigin: Origin & { caPem: string };
let proxy: RunningGateway;
let schoolCa: string;
let base: string;

beforeAll(async () => {
  origin = await startHttpOrigin(serve);
  tlsOrigin = await startHttpsOrigin('hoc.test', serve);
  const files = interceptionFiles('Tiểu học Kiểm thử', tlsOrigin.caPem);
  schoolCa = files.schoolCa;
  proxy = await startGateway({
    rules: {
      'policy.yaml': POLICY(tlsOrigin.port),
      'categories/gambling/phrases': GAMBLING_PHRASES,
      'categories/adult/phrases': readFileSync(path.join(REPO_ROOT, 'rules/categories/adult/phrases'), 'utf8'),
    },
    hosts: '127.0.0.1 trang.test muon.test hoc.test www.google.com\n',
    ...files.gateway,
  });
  base = `http://trang.test:${origin.port}`;
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await origin?.close();
  await tlsOrigin?.close();
});

describe('pages read on their way (docs/contract.md §8)', () => {
  it('blocks a betting page for tieu-hoc with the block page naming the category and phrase, and records the event', async () => {
    const result = await curl(proxy.port, `${base}/harmful`);
    expect(result.status).toBe(403);
    expect(result.headers['x-lachan-block']).toBe('gambling');
    expect(result.body).toContain('Trang này đã bị chặn');
    expect(isGamblingPhrase(namedPhrase(result.body))).toBe(true);
    expect(result.body).not.toContain('nhà cái uy tín số 1');
    // The review form, as for any block.
    const reference = /name="ref" value="([^"]+)"/.exec(result.body)?.[1];
    expect(reference).toMatch(/\S/);
    const events = await storedEventsUntil(proxy.dataDir, (e) => e.reason === 'content' && e.path === '/harmful');
    const event = events.find((e) => e.reason === 'content' && e.path === '/harmful');
    expect(event).toMatchObject({ category: 'gambling', host: 'trang.test', profile: 'tieu-hoc' });
    expect(isGamblingPhrase(String(event!.rule))).toBe(true);
  });

  it('passes the same page to a teacher, whose profile has no content_limit', async () => {
    const result = await fetchRaw(proxy.port, `${base}/harmful`, TEACHER);
    expect(result.status).toBe(200);
    expect(result.body.equals(HARMFUL)).toBe(true);
  });

  it('reads gzip and br bodies, and a windows-1258 page', async () => {
    for (const page of ['/harmful.gz', '/harmful.br', '/harmful-1258']) {
      const result = await curl(proxy.port, `${base}${page}`, ['--compressed']);
      expect(result.status, page).toBe(403);
      expect(result.headers['x-lachan-block'], page).toBe('gambling');
    }
    // The teacher gets the compressed bytes as the origin sent them.
    const teacher = await fetchRaw(proxy.port, `${base}/harmful.gz`, TEACHER);
    expect(zlib.gunzipSync(teacher.body).equals(HARMFUL)).toBe(true);
  });

  it('passes a harmless page byte for byte with its headers', async () => {
    const result = await fetchRaw(proxy.port, `${base}/harmless`);
    expect(result.status).toBe(200);
    expect(result.body.equals(HARMLESS)).toBe(true);
    expect(result.headers).toMatchObject({
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(HARMLESS.length),
      'x-origin': 'kept',
      etag: '"v1"',
    });
  });

  it('leaves an image with betting words inside untouched', async () => {
    const result = await fetchRaw(proxy.port, `${base}/image.png`);
    expect(result.status).toBe(200);
    expect(result.body.equals(IMAGE)).toBe(true);
    expect(result.headers['content-length']).toBe(String(IMAGE.length));
  });

  it('cuts a page whose harmful text comes past the held-back prefix, and records the event', async () => {
    // Its own host: blocks of one client, host and category within 30 s are one event (one visit).
    const late = `http://muon.test:${origin.port}/late`;
    const result = await curl(proxy.port, late);
    expect(result.status).toBe(200);
    // curl: 18, the transfer closed with bytes of the Content-Length still to come.
    expect(result.code).toBe(18);
    expect(Buffer.byteLength(result.body)).toBe(LATE_HEAD.length);
    expect(result.body).not.toContain('nhà cái');
    const events = await storedEventsUntil(proxy.dataDir, (e) => e.reason === 'content' && e.path === '/late');
    expect(events.find((e) => e.reason === 'content' && e.path === '/late')).toMatchObject({ category: 'gambling', host: 'muon.test' });
    // The teacher gets all of it.
    const teacher = await curl(proxy.port, late, { from: TEACHER });
    expect(teacher.code).toBe(0);
    expect(Buffer.byteLength(teacher.body)).toBe(LATE_HEAD.length + LATE_TAIL.length);
  });

  it('blocks an inspected HTTPS page', async () => {
    const blocked = await curl(proxy.port, `https://hoc.test:${tlsOrigin.port}/harmful`, { caPem: schoolCa });
    expect(blocked.status).toBe(403);
    expect(blocked.headers['x-lachan-block']).toBe('gambling');
    expect(isGamblingPhrase(namedPhrase(blocked.body))).toBe(true);
    const harmless = await curl(proxy.port, `https://hoc.test:${tlsOrigin.port}/harmless`, { caPem: schoolCa });
    expect(harmless.status).toBe(200);
    expect(harmless.body).toBe(HARMLESS.toString());
  });
});

describe('search terms (docs/contract.md §8)', () => {
  it('blocks a betting search before any result, and keeps the query out of the event', async () => {
    const url = `http://www.google.com:${origin.port}/search?q=${encodeURIComponent('nhà cái uy tín')}&hl=vi`;
    const blocked = await curl(proxy.port, url);
    expect(blocked.status).toBe(403);
    expect(blocked.headers['x-lachan-block']).toBe('gambling');
    expect(blocked.body).toContain('Tìm kiếm này đã bị chặn');
    expect(origin.seen.some((r) => r.url?.startsWith('/search'))).toBe(false);
    const events = await storedEventsUntil(proxy.dataDir, (e) => e.reason === 'content' && e.path === '/search');
    const event = events.find((e) => e.reason === 'content' && e.path === '/search');
    expect(event).toMatchObject({ category: 'gambling', host: 'www.google.com' });
    expect(JSON.stringify(event)).not.toContain('hl=vi');
    // A search for homework goes through.
    const allowed = await curl(proxy.port, `http://www.google.com:${origin.port}/search?q=${encodeURIComponent('cây xanh')}`);
    expect(allowed.status).toBe(200);
  });
});
