import type { Server, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseResponseHead, OriginError } from '../src/proxy/origin-client.js';
import { curl, policyYaml, rawExchange, type RawRequest, rawStatus, type RunningGateway, startGateway, startRawOrigin } from './harness/index.js';

/**
 * The proxy's own upstream client (GET and HEAD to http: origins) against an origin
 * that writes raw bytes: framings Node's http server never produces, split at awkward
 * places, and the malformed answers a proxy must refuse rather than pass on.
 */

type Script = (socket: Socket, request: RawRequest) => void;

const CHUNKED_SPLIT = [
  'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r',
  '\nhello\r\n6\r\n worl',
  'd\r\n0\r\nX-Trailer: yes\r\n\r\n',
];

const scripts: Record<string, Script> = {
  '/chunked-split': (socket) => {
    CHUNKED_SPLIT.forEach((part, i) => {
      setTimeout(() => socket.write(part), i * 30);
    });
  },
  '/until-close': (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst ');
    setTimeout(() => socket.end('and last'), 30);
  },
  '/head-split': (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nX-Split: a');
    setTimeout(() => socket.write('b\r\nContent-Length: 2\r'), 20);
    setTimeout(() => socket.write('\n\r\nok'), 40);
  },
  '/head-bytewise': (socket) => {
    const bytes = Buffer.from('HTTP/1.1 200 OK\r\nX-Bytewise: yes\r\nContent-Length: 4\r\n\r\ndone', 'latin1');
    bytes.forEach((byte, i) => {
      setTimeout(() => socket.write(Buffer.from([byte])), i * 2);
    });
  },
  '/continue-forever': (socket) => {
    const timer = setInterval(() => socket.write('HTTP/1.1 100 Continue\r\n\r\n'), 200);
    socket.on('close', () => clearInterval(timer));
  },
  '/trickle': (socket) => {
    const head = 'HTTP/1.1 200 OK\r\nX-Slow: ' + 'z'.repeat(100);
    let at = 0;
    const timer = setInterval(() => (at < head.length ? socket.write(head[at++]!) : clearInterval(timer)), 50);
    socket.on('close', () => clearInterval(timer));
  },
  '/sized': (socket, { method }) => socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Method: ${method}\r\n\r\n${method === 'HEAD' ? '' : 'sized'}`),
  '/no-content': (socket) => socket.write('HTTP/1.1 204 No Content\r\nX-Empty: yes\r\n\r\n'),
  '/not-modified': (socket) => socket.write('HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n'),
  '/informational': (socket) =>
    socket.write(
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal',
    ),
  '/close-header': (socket) => socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye'),
  '/http10': (socket) => {
    socket.write('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold server');
    socket.end();
  },
  // Answers the first request on a connection and drops the connection on the next one
  // without a byte: the race of an origin closing a kept-alive connection as a request goes out.
  '/stale': (socket, { onConnection }) => {
    if (onConnection === 1) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh');
    else socket.destroy();
  },
  '/gzip-chunked': (socket) => socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'),
  '/cl-and-te': (socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'),
  '/cl-differ': (socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'),
  '/folded': (socket) => socket.write('HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 2\r\n\r\nok'),
  '/bare-lf': (socket) => socket.write('HTTP/1.1 200 OK\r\nX-A: one\nSet-Cookie: injected=1\r\nContent-Length: 2\r\n\r\nok'),
  '/lf-only': (socket) => socket.write('HTTP/1.1 200 OK\nContent-Length: 2\n\nok'),
  '/bad-status': (socket) => socket.write('HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok'),
  '/not-http': (socket) => socket.write('ICY 200 OK\r\nContent-Length: 2\r\n\r\nok'),
  // Read leniently (hex digits until the first other character), `zz` would be the last chunk and end the body cleanly.
  '/bad-chunk': (socket) => socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n'),
  '/huge-head': (socket) => socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\nContent-Length: 2\r\n\r\nok`),
  '/switching': (socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n'),
};

let origin: Server;
let originPort: number;
/** Connections the origin has accepted. */
let connections: () => number;
let proxy: RunningGateway;

beforeAll(async () => {
  const raw = await startRawOrigin((socket, request) => {
    const script = scripts[request.path];
    if (script === undefined) socket.write('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    else script(socket, request);
  });
  origin = raw.server;
  originPort = raw.port;
  connections = raw.connections;
  proxy = await startGateway({
    rules: { 'policy.yaml': policyYaml({ defaultProfile: 'hs', profiles: { hs: { name: 'Học sinh', blockCategories: [] } } }) },
    hosts: '127.0.0.1 raw.test\n',
    // The origin's head deadline (1 s here): the timeout tests wait for it.
    args: ['--upstream-timeout', '1'],
  });
});

afterAll(async () => {
  await proxy?.stop();
  origin?.close();
});

const url = (path: string): string => `http://raw.test:${originPort}${path}`;

describe('origin client framing', () => {
  it('decodes a chunked response split inside its chunk-size line and data, extensions and trailers included', async () => {
    const result = await curl(proxy.port, url('/chunked-split'));
    expect(result.status).toBe(200);
    expect(result.body).toBe('hello world');
    expect(result.headers['x-trailer']).toBeUndefined();
  });

  it('reads a response without length until the origin closes, and an HTTP/1.0 one', async () => {
    const result = await curl(proxy.port, url('/until-close'));
    expect(result.status).toBe(200);
    expect(result.body).toBe('first and last');
    const old = await curl(proxy.port, url('/http10'));
    expect(old.body).toBe('old server');
  });

  it.each([
    ['/head-split', 'in three pieces, its final CRLF CRLF cut after the first CR', 'x-split', 'ab', 'ok'],
    ['/head-bytewise', 'one byte at a time', 'x-bytewise', 'yes', 'done'],
  ])('assembles a response head sent %s (%s)', async (path, _how, field, value, body) => {
    const result = await curl(proxy.port, url(path));
    expect(result.status).toBe(200);
    expect(result.headers[field]).toBe(value);
    expect(result.body).toBe(body);
  });

  it('takes no body after HEAD, 204 and 304, and reuses the connection afterwards', async () => {
    const before = connections();
    const head = await curl(proxy.port, url('/sized'), { args: ['-I'] });
    expect(head.status).toBe(200);
    expect(head.headers['x-method']).toBe('HEAD');
    expect(head.headers['content-length']).toBe('5');
    expect((await curl(proxy.port, url('/no-content'))).status).toBe(204);
    const notModified = await curl(proxy.port, url('/not-modified'));
    expect(notModified.status).toBe(304);
    expect(notModified.headers.etag).toBe('"v1"');
    const get = await curl(proxy.port, url('/sized'));
    expect(get.body).toBe('sized');
    // Four requests, one after another, over one kept-alive upstream connection.
    expect(connections() - before).toBeLessThanOrEqual(1);
  });

  it('passes over 100 and 103 answers to the final response', async () => {
    const result = await curl(proxy.port, url('/informational'));
    expect(result.status).toBe(200);
    expect(result.body).toBe('final');
  });

  it('opens a new connection after the origin says Connection: close', async () => {
    expect((await curl(proxy.port, url('/close-header'))).body).toBe('bye');
    const before = connections();
    expect((await curl(proxy.port, url('/close-header'))).body).toBe('bye');
    expect(connections() - before).toBe(1);
  });

  it('retries once on a fresh connection when a kept-alive one is dropped without an answer', async () => {
    // The first request opens a connection; the second goes out on it and the origin drops it.
    expect((await curl(proxy.port, url('/stale'))).body).toBe('fresh');
    const before = connections();
    const again = await curl(proxy.port, url('/stale'));
    expect(again.status).toBe(200);
    expect(again.body).toBe('fresh');
    expect(connections() - before).toBe(1);
  });
});

describe('origin client deadlines', () => {
  it.each([
    ['/continue-forever', 'a 100 Continue every 200 ms'],
    ['/trickle', 'a head trickled a byte every 50 ms'],
  ])('answers %s (%s) with the 504 page once the head deadline passes', async (path) => {
    const started = Date.now();
    const result = await curl(proxy.port, url(path));
    expect(result.status).toBe(504);
    expect(result.body).toContain('không trả lời kịp');
    // The deadline is 1 s from the request, checked on each tick of up to a second.
    expect(Date.now() - started).toBeLessThan(4_000);
  });
});

describe('origin client refusals', () => {
  it.each([
    ['/cl-and-te', 'Content-Length with Transfer-Encoding'],
    ['/gzip-chunked', 'a transfer coding the client would not be told of'],
    ['/cl-differ', 'two different Content-Length values'],
    ['/folded', 'a folded header line'],
    ['/bare-lf', 'a bare LF smuggling a header'],
    ['/lf-only', 'a head with bare LF line endings (at once, not at the deadline)'],
    ['/bad-status', 'a malformed status code'],
    ['/not-http', 'a status line that is not HTTP/1.x'],
    ['/huge-head', 'a response head over 64 KiB'],
    ['/switching', 'a 101 nobody asked for'],
  ])('answers %s (%s) with the 502 page, and keeps serving', async (path) => {
    const result = await rawExchange(proxy.port, `GET ${url(path)} HTTP/1.1\r\nHost: raw.test\r\nConnection: close\r\n\r\n`);
    expect(rawStatus(result.text)).toBe(502);
    expect(result.text).toContain('Trang web bị lỗi');
    expect(result.text).not.toContain('injected');
    expect((await curl(proxy.port, url('/sized'))).body).toBe('sized');
  });

  it('answers a malformed chunk size before any body byte (found after the head was taken) with the 502 page, and keeps serving', async () => {
    const result = await rawExchange(proxy.port, `GET ${url('/bad-chunk')} HTTP/1.1\r\nHost: raw.test\r\nConnection: close\r\n\r\n`);
    expect(result.closed).toBe(true);
    expect(rawStatus(result.text)).toBe(502);
    // No complete response: the client must not take the cut-off body for a whole one.
    expect(result.text).not.toMatch(/\r\n0\r\n\r\n$/);
    expect((await curl(proxy.port, url('/sized'))).body).toBe('sized');
  });
});

describe('parseResponseHead', () => {
  it.each([
    ['HTTP/1.1 200 OK\r\nContent-Length: 3', false, { status: 200, framing: 1, length: 3, keepAlive: true }],
    ['HTTP/1.1 200', false, { status: 200, framing: 3, keepAlive: false }],
    ['HTTP/1.0 200 OK\r\nContent-Length: 3', false, { status: 200, framing: 1, keepAlive: false }],
    ['HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 3', false, { keepAlive: true }],
    ['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3', false, { keepAlive: false }],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked ', false, { framing: 2, keepAlive: true }],
    ['HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked', false, { framing: 2, keepAlive: false }],
    ['HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nX-After: 1', false, { framing: 1, length: 3, fields: ['X-After', '1', 'Content-Length', '3'] }],
    ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\ncontent-length: 3', false, { fields: ['Content-Length', '3'] }],
    ['HTTP/1.1 200 OK\r\nContent-Length: 3', true, { framing: 0, keepAlive: true }],
    ['HTTP/1.1 204 No Content\r\nContent-Length: 3', false, { framing: 0 }],
    ['HTTP/1.1 200 OK\r\nX-Tab:\tvalue\t ', false, { fields: ['X-Tab', 'value'] }],
  ])('reads %j (HEAD: %s)', (text, isHead, expected) => {
    expect(parseResponseHead(text, isHead)).toMatchObject(expected);
  });

  it.each([
    'HTTP/2 200 OK',
    'HTTP/1.1 20 OK',
    'HTTP/1.1 099 Odd',
    'HTTP/1.1 200OK',
    'HTTP/1.1 200 OK\r\nContent-Length: -1',
    'HTTP/1.1 200 OK\r\nContent-Length: 1e3',
    'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4',
    'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip',
    'HTTP/1.1 200 OK\r\nContent-Length: 3\u00a0',
    'HTTP/1.1 200 OK\r\nX-A : b',
    'HTTP/1.1 200 OK\r\n: b',
    'HTTP/1.1 200 OK\r\nX-A: b\r\n c',
    'HTTP/1.1 200 OK\r\nX-A: b\rX-B: c',
    'HTTP/1.1 200 OK\r\nX-A: b\u0000',
  ])('refuses %j', (text) => {
    expect(parseResponseHead(text, false)).toBeInstanceOf(OriginError);
  });
});
