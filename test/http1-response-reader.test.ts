import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ResponseReader } from '../src/proxy/http1/response-reader.js';
import { bytewise, cut, type ReaderRun, runReader } from './harness/index.js';

/**
 * The sans-IO response reader in memory (src/proxy/http1/response-reader.ts): every
 * framing it reads and every malformed response it refuses, each fed whole, cut at
 * every byte position and one byte at a time, with the same result each way. The same
 * cases reach it over real sockets in test/proxy-origin-client.test.ts.
 */

interface Case {
  name: string;
  bytes: string;
  isHead?: boolean;
  maxHeadBytes?: number;
  expected: Partial<ReaderRun> & { status?: number };
}

const BIG_HEAD = 64;
/** A head of exactly `content` bytes before its blank line, with `Content-Length: 0`. */
function headOf(content: number, lineEnd = '\r\n\r\n'): string {
  const start = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: ';
  return `${start}${'p'.repeat(content - start.length)}${lineEnd}`;
}

const CASES: Case[] = [
  {
    name: 'Content-Length body',
    bytes: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello',
    expected: { status: 200, body: 'hello', outcome: 'end', extra: false },
  },
  {
    name: 'chunked body with an extension and trailers',
    bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n',
    expected: { status: 200, body: 'hello world', outcome: 'end' },
  },
  {
    name: 'chunked body with upper-case hex and no trailers',
    bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n',
    expected: { status: 200, body: '0123456789', outcome: 'end' },
  },
  {
    name: 'body delimited by the close',
    bytes: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst and last',
    expected: { status: 200, body: 'first and last', outcome: 'end at close' },
  },
  {
    name: 'HTTP/1.0 body delimited by the close',
    bytes: 'HTTP/1.0 200 OK\r\n\r\nold server',
    expected: { status: 200, body: 'old server', outcome: 'end at close' },
  },
  {
    name: 'HEAD response with a Content-Length',
    bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n',
    isHead: true,
    expected: { status: 200, body: '', outcome: 'end' },
  },
  { name: '204 without a body', bytes: 'HTTP/1.1 204 No Content\r\nX-Empty: yes\r\n\r\n', expected: { status: 204, body: '', outcome: 'end' } },
  {
    name: '304 with a Content-Length and no body',
    bytes: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n',
    expected: { status: 304, body: '', outcome: 'end' },
  },
  {
    name: '100 and 103 before the final response',
    bytes: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal',
    expected: { status: 200, body: 'final', outcome: 'end' },
  },
  { name: 'Content-Length: 0', bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', expected: { status: 200, body: '', outcome: 'end' } },
  {
    name: 'repeated equal Content-Length',
    bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok',
    expected: { status: 200, body: 'ok', outcome: 'end' },
  },
  {
    name: 'bytes after the response',
    bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n',
    expected: { status: 200, body: 'ok', outcome: 'end', extra: true },
  },
  {
    name: 'bytes after a bodiless response',
    bytes: 'HTTP/1.1 204 No Content\r\n\r\nsmuggled',
    expected: { status: 204, body: '', outcome: 'end', extra: true },
  },
  { name: 'a response cut short', bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf', expected: { status: 200, body: 'half', outcome: 'incomplete' } },
  { name: 'a head cut short', bytes: 'HTTP/1.1 200 OK\r\nContent-Le', expected: { head: null, outcome: 'incomplete' } },
  { name: 'a head of exactly the size limit', bytes: `${headOf(BIG_HEAD)}`, maxHeadBytes: BIG_HEAD, expected: { status: 200, outcome: 'end' } },
  {
    name: 'a head a byte over the size limit',
    bytes: `${headOf(BIG_HEAD + 1)}`,
    maxHeadBytes: BIG_HEAD,
    expected: { head: null, outcome: 'error: response head too large' },
  },
  {
    name: 'a head over the size limit that never ends',
    bytes: 'HTTP/1.1 200 OK\r\nX-Pad: ' + 'p'.repeat(200),
    maxHeadBytes: BIG_HEAD,
    expected: { outcome: 'error: response head too large' },
  },
  {
    name: 'a head with bare LF line endings',
    bytes: 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok',
    expected: { head: null, outcome: 'error: response head with bare LF line endings' },
  },
  {
    name: 'bare LFs, then CRLFs',
    bytes: 'HTTP/1.1 200 OK\nX: y\n\nContent-Length: 0\r\n\r\n',
    expected: { outcome: 'error: response head with bare LF line endings' },
  },
  {
    name: 'bare LFs past the size limit',
    bytes: `${headOf(BIG_HEAD + 8, '\n\n')}`,
    maxHeadBytes: BIG_HEAD,
    expected: { outcome: 'error: response head too large' },
  },
  {
    name: 'a bare LF inside a field',
    bytes: 'HTTP/1.1 200 OK\r\nX: a\nb\r\nContent-Length: 0\r\n\r\n',
    expected: { outcome: 'error: bare CR or LF in the response head' },
  },
  {
    name: 'a bare CR inside a field',
    bytes: 'HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n',
    expected: { outcome: 'error: bare CR or LF in the response head' },
  },
  {
    name: 'a NUL in the head',
    bytes: 'HTTP/1.1 200 OK\r\nX: a\0b\r\nContent-Length: 0\r\n\r\n',
    expected: { outcome: 'error: control character in the response head' },
  },
  {
    name: 'a folded field (obs-fold)',
    bytes: 'HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n',
    expected: { outcome: 'error: field line without a name' },
  },
  {
    name: 'a folded line with a colon',
    bytes: 'HTTP/1.1 200 OK\r\nX: a\r\n\tY: b\r\nContent-Length: 0\r\n\r\n',
    expected: { outcome: 'error: field name is not a token (folded or malformed line)' },
  },
  {
    name: 'a field without a name',
    bytes: 'HTTP/1.1 200 OK\r\n: nameless\r\nContent-Length: 0\r\n\r\n',
    expected: { outcome: 'error: field line without a name' },
  },
  {
    name: 'an HTTP/2 status line',
    bytes: 'HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n',
    expected: { outcome: 'error: not an HTTP/1.x status line with a three-digit code' },
  },
  { name: 'a two-digit status', bytes: 'HTTP/1.1 20 OK\r\n\r\n', expected: { outcome: 'error: not an HTTP/1.x status line with a three-digit code' } },
  {
    name: 'an unasked-for 101',
    bytes: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n',
    expected: { outcome: 'error: 101 Switching Protocols without an upgrade' },
  },
  {
    name: 'Content-Length and Transfer-Encoding',
    bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    expected: { outcome: 'error: both Content-Length and Transfer-Encoding' },
  },
  {
    name: 'Content-Length values that differ',
    bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
    expected: { outcome: 'error: Content-Length values differ' },
  },
  { name: 'a signed Content-Length', bytes: 'HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello', expected: { outcome: 'error: malformed Content-Length' } },
  {
    name: 'a transfer coding other than chunked',
    bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
    expected: { outcome: 'error: a transfer coding other than chunked' },
  },
  {
    name: 'a chunk size that is not hex',
    bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    expected: { status: 200, outcome: 'error: malformed chunk size' },
  },
  { name: 'a negative chunk size', bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n', expected: { outcome: 'error: malformed chunk size' } },
  {
    name: 'a chunk size of 13 hex digits',
    bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000\r\n',
    expected: { outcome: 'error: malformed chunk size' },
  },
  {
    name: 'a chunk size with a bare LF',
    bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n',
    expected: { outcome: 'error: bare LF in chunked framing' },
  },
  {
    name: 'chunk data longer than its size',
    bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n',
    expected: { body: 'hel', outcome: 'error: chunk data not followed by CRLF' },
  },
  {
    name: 'a chunk-size line over 8 KiB',
    bytes: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;${'e'.repeat(9000)}\r\nhello\r\n0\r\n\r\n`,
    expected: { outcome: 'error: chunk-size or trailer line too long' },
  },
  {
    name: 'a trailer without a name',
    bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nnot a field\r\n\r\n',
    expected: { body: 'ok', outcome: 'error: malformed trailer' },
  },
  {
    name: 'trailers over the head limit',
    bytes: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${'X-T: yyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n'.repeat(4)}\r\n`,
    maxHeadBytes: BIG_HEAD,
    expected: { outcome: 'error: malformed trailer' },
  },
];

const KEEP_ALIVE: [string, boolean][] = [
  ['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', true],
  ['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', false],
  ['HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n', false],
  ['HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n', true],
  ['HTTP/1.1 200 OK\r\n\r\n', false],
];

function check(run: ReaderRun, expected: Case['expected']): void {
  const { status, ...rest } = expected;
  if (status !== undefined) expect(run.head?.status).toBe(status);
  expect(run).toMatchObject(rest);
}

describe('the HTTP/1 response reader', () => {
  describe.each(CASES)('$name', ({ bytes, isHead, maxHeadBytes, expected }) => {
    const whole = Buffer.from(bytes, 'latin1');

    it('reads it whole', () => {
      check(runReader([whole], isHead, maxHeadBytes), expected);
    });

    it('reads it the same cut at every byte position, and one byte at a time', () => {
      const reference = runReader([whole], isHead, maxHeadBytes);
      for (let at = 0; at <= whole.length; at++) expect(runReader(cut(whole, [at]), isHead, maxHeadBytes), `cut at ${at}`).toEqual(reference);
      expect(runReader(bytewise(whole), isHead, maxHeadBytes)).toEqual(reference);
    });
  });

  it.each(KEEP_ALIVE)('tells whether the connection may be reused: %j', (bytes, keepAlive) => {
    expect(runReader([Buffer.from(bytes, 'latin1')]).head?.keepAlive).toBe(keepAlive);
  });

  it('passes Content-Length on once, in one spelling', () => {
    const run = runReader([Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\nX-A: b\r\n\r\nok', 'latin1')]);
    expect(run.head?.fields).toEqual(['X-A', 'b', 'Content-Length', '2']);
  });

  it('reads nothing more once stopped', () => {
    const bytes = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd', 'latin1');
    let data = '';
    let events = 0;
    const reader = new ResponseReader(
      {
        onHead: () => {
          events++;
          reader.stop();
        },
        onData: (chunk) => (data += chunk.toString()),
        onEnd: () => events++,
        onError: () => events++,
      },
      1024,
    );
    reader.start(false);
    reader.feed(bytes);
    expect({ events, data, idle: reader.idle }).toEqual({ events: 1, data: '', idle: true });
  });
});

/** Response prefixes that get the generated bytes past the head into each body framing. */
const PREFIXES = [
  '',
  'HTTP/1.1 200 OK\r\n',
  'HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n',
  'HTTP/1.1 100 Continue\r\n\r\n',
  'HTTP/1.1 200 OK\r\n\r\n',
];
const ALPHABET = [
  '\r',
  '\n',
  '\r\n',
  '\r\n\r\n',
  '\n\n',
  '0',
  '5',
  'a',
  ';',
  ':',
  ' ',
  'X',
  'HTTP/1.1 200 OK',
  'Content-Length: 3',
  'Transfer-Encoding: chunked',
  '\0',
];
const noisyBytes = fc
  .tuple(fc.constantFrom(...PREFIXES), fc.array(fc.oneof(fc.constantFrom(...ALPHABET), fc.string({ unit: 'binary', maxLength: 4 })), { maxLength: 40 }))
  .map(([prefix, parts]) => Buffer.from(prefix + parts.join(''), 'latin1'));

describe('the HTTP/1 response reader, generated bytes', () => {
  it('never throws', () => {
    fc.assert(
      fc.property(noisyBytes, fc.boolean(), fc.integer({ min: 16, max: 256 }), (bytes, isHead, maxHeadBytes) => {
        runReader([bytes], isHead, maxHeadBytes);
      }),
      { numRuns: 500 },
    );
  });

  it('reads the same however the bytes are cut', () => {
    fc.assert(
      fc.property(noisyBytes, fc.array(fc.nat(), { maxLength: 6 }), fc.boolean(), fc.integer({ min: 16, max: 256 }), (bytes, cuts, isHead, maxHeadBytes) => {
        const at = [...new Set(cuts.map((n) => n % (bytes.length + 1)))].sort((a, b) => a - b);
        expect(runReader(cut(bytes, at), isHead, maxHeadBytes)).toEqual(runReader([bytes], isHead, maxHeadBytes));
        expect(runReader(bytewise(bytes), isHead, maxHeadBytes)).toEqual(runReader([bytes], isHead, maxHeadBytes));
      }),
      { numRuns: 500 },
    );
  });
});
