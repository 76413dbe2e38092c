/**
 * Smuggling and malformed-framing shapes, as raw bytes, with what the proxy must do.
 * Client side: `{HOST}` is the origin's authority; every request that reaches the
 * origin would be followed by `GET /smuggled`, which the origin must never see as a
 * request of its own. Origin side: the raw response an origin writes.
 */

export interface ClientCase {
  readonly name: string;
  /** The request bytes up to (not including) the smuggled request that follows. */
  readonly request: string;
}

const post = (headers: string, body: string): string => `POST http://{HOST}/upload HTTP/1.1\r\nHost: {HOST}\r\n${headers}\r\n${body}`;

/** Requests that must be answered with the 400 page (and nothing forwarded after them). */
export const CLIENT_REFUSED: readonly ClientCase[] = [
  { name: 'Transfer-Encoding: xchunked', request: post('Transfer-Encoding: xchunked\r\n', '5\r\nhello\r\n0\r\n\r\n') },
  { name: 'bare LF after chunk size', request: post('Transfer-Encoding: chunked\r\n', '5\nhello\n0\n\n') },
  { name: 'bare LF after chunk data', request: post('Transfer-Encoding: chunked\r\n', '5\r\nhello\n0\r\n\r\n') },
  { name: 'chunk size of 21 hex digits', request: post('Transfer-Encoding: chunked\r\n', `${'f'.repeat(21)}\r\nhello\r\n0\r\n\r\n`) },
  { name: 'chunk size of 17 hex digits', request: post('Transfer-Encoding: chunked\r\n', `1${'0'.repeat(16)}\r\nhello\r\n0\r\n\r\n`) },
  { name: 'chunk size with 0x prefix', request: post('Transfer-Encoding: chunked\r\n', '0x5\r\nhello\r\n0\r\n\r\n') },
  { name: 'negative chunk size', request: post('Transfer-Encoding: chunked\r\n', '-5\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk data longer than its size', request: post('Transfer-Encoding: chunked\r\n', '3\r\nhello\r\n0\r\n\r\n') },
  { name: 'Content-Length and Transfer-Encoding', request: post('Content-Length: 4\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n') },
  { name: 'two different Content-Length', request: post('Content-Length: 5\r\nContent-Length: 6\r\n', 'hello!') },
  { name: 'Content-Length list', request: post('Content-Length: 5, 6\r\n', 'hello!') },
  { name: 'negative Content-Length', request: post('Content-Length: -1\r\n', '') },
  { name: 'Content-Length with plus sign', request: post('Content-Length: +5\r\n', 'hello') },
  { name: 'Content-Length in hex', request: post('Content-Length: 0x5\r\n', 'hello') },
  { name: 'space before the colon of Transfer-Encoding', request: post('Transfer-Encoding : chunked\r\n', '0\r\n\r\n') },
  { name: 'Transfer-Encoding folded onto a second line', request: post('Transfer-Encoding:\r\n chunked\r\n', '0\r\n\r\n') },
  { name: 'chunked not the last transfer coding', request: post('Transfer-Encoding: chunked, identity\r\n', '0\r\n\r\n') },
  { name: 'Transfer-Encoding with a vertical tab', request: post('Transfer-Encoding: \x0bchunked\r\n', '0\r\n\r\n') },
  { name: 'NUL in a header value', request: post('X-A: a\x00b\r\nContent-Length: 0\r\n', '') },
  { name: 'bare CR in a header line', request: post('X-A: a\rTransfer-Encoding: chunked\r\nContent-Length: 0\r\n', '') },
  { name: 'header name with a space', request: post('Bad Name: x\r\nContent-Length: 0\r\n', '') },
  { name: 'HTTP/1.1 request without Host', request: 'GET http://{HOST}/ HTTP/1.1\r\n\r\n' },
  { name: 'unknown HTTP version', request: 'GET http://{HOST}/ HTTP/1.7\r\nHost: {HOST}\r\n\r\n' },
  { name: 'chunk extension with a bare CR', request: post('Transfer-Encoding: chunked\r\n', '5;a\rb\r\nhello\r\n0\r\n\r\n') },
  { name: 'trailer with no colon', request: post('Transfer-Encoding: chunked\r\n', '5\r\nhello\r\n0\r\nno-colon\r\n\r\n') },
];

export interface OriginCase {
  readonly name: string;
  readonly response: string;
  /** `page`: nothing of the response reached the client, which gets the 502 page; `cut`: part of the body went out, the client is cut off. */
  readonly expect: 'page' | 'cut';
}

const chunked = (body: string): string => `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n${body}`;

/** Responses the origin client must refuse: never relayed as a whole, never a crash, never a poisoned pool. */
export const ORIGIN_REFUSED: readonly OriginCase[] = [
  { name: 'chunk size of 20 hex digits', response: chunked(`${'f'.repeat(20)}\r\nhello\r\n0\r\n\r\n`), expect: 'page' },
  { name: 'chunk size of 13 hex digits', response: chunked(`1${'0'.repeat(12)}\r\nhello\r\n0\r\n\r\n`), expect: 'page' },
  { name: 'chunk size with 0x prefix', response: chunked('0x5\r\nhello\r\n0\r\n\r\n'), expect: 'page' },
  { name: 'negative chunk size', response: chunked('-5\r\nhello\r\n0\r\n\r\n'), expect: 'page' },
  { name: 'chunk size that is not hex', response: chunked('zz\r\n\r\n'), expect: 'page' },
  { name: 'bare LF after chunk size', response: chunked('5\nhello\r\n0\r\n\r\n'), expect: 'page' },
  { name: 'endless chunk-size line', response: chunked(`5;${'x'.repeat(9000)}`), expect: 'page' },
  { name: 'chunk data longer than its size', response: chunked('3\r\nhello\r\n0\r\n\r\n'), expect: 'cut' },
  { name: 'bad chunk size after a good chunk', response: chunked(`5\r\nhello\r\n${'f'.repeat(20)}\r\n`), expect: 'cut' },
  { name: 'malformed trailer', response: chunked('5\r\nhello\r\n0\r\nno colon here\r\n\r\n'), expect: 'cut' },
  {
    name: 'Content-Length and Transfer-Encoding',
    response: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    expect: 'page',
  },
  { name: 'Transfer-Encoding xchunked', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', expect: 'page' },
  { name: 'two different Content-Length', response: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', expect: 'page' },
  { name: 'negative Content-Length', response: 'HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello', expect: 'page' },
  { name: 'header smuggled by a bare LF', response: 'HTTP/1.1 200 OK\r\nX-A: a\nSet-Cookie: injected=1\r\nContent-Length: 2\r\n\r\nok', expect: 'page' },
  { name: 'header smuggled by a bare CR', response: 'HTTP/1.1 200 OK\r\nX-A: a\rSet-Cookie: injected=1\r\nContent-Length: 2\r\n\r\nok', expect: 'page' },
  { name: 'NUL in a header', response: 'HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok', expect: 'page' },
  { name: 'status code of four digits', response: 'HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok', expect: 'page' },
];
