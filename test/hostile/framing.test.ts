import type { Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_REFUSED, ORIGIN_REFUSED } from './framing-corpus.js';
import { curl, policyYaml, rawExchange, rawStatus, type RunningGateway, startGateway, startRawOrigin } from '../harness/index.js';

/**
 * Malformed framing from either side gets a page, not a silent close: the client's
 * bad request the 400 page, an origin's bad response the 502 page while none of it
 * has reached the client. A request smuggled behind a malformed one never reaches
 * the origin, and the proxy keeps serving afterwards.
 */

const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: origin.test\r\n\r\n';

let origin: Server;
let originPort: number;
/** Paths of the requests the origin has read. */
const seen: string[] = [];
let proxy: RunningGateway;

beforeAll(async () => {
  const raw = await startRawOrigin((socket, { method, path }) => {
    // Request bodies read as heads (`5\r\nhello…`) are no requests.
    if (!/^[A-Z]+$/.test(method)) return;
    seen.push(path);
    const caseIndex = /^\/origin\/(\d+)$/.exec(path);
    if (caseIndex !== null) socket.write(ORIGIN_REFUSED[Number(caseIndex[1])]!.response);
    else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  });
  origin = raw.server;
  originPort = raw.port;
  proxy = await startGateway({
    rules: { 'policy.yaml': policyYaml({ defaultProfile: 'hs', profiles: { hs: { name: 'Học sinh' } } }) },
    hosts: '127.0.0.1 origin.test\n',
  });
});

afterAll(async () => {
  await proxy?.stop();
  origin?.close();
});

/** A plain request through the proxy is answered in full (raw, no curl process per check). */
async function servedWhole(): Promise<boolean> {
  const result = await rawExchange(proxy.port, `GET http://origin.test:${originPort}/after HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n`);
  return rawStatus(result.text) === 200 && result.text.endsWith('\r\n\r\nok');
}

describe('client requests with malformed framing', () => {
  it.each(CLIENT_REFUSED.map((c) => [c.name, c] as const))('%s: the 400 page, nothing smuggled', async (_name, testCase) => {
    const request = testCase.request.replaceAll('{HOST}', `origin.test:${originPort}`);
    const result = await rawExchange(proxy.port, `${request}${SMUGGLED}`);
    expect(rawStatus(result.text)).toBe(400);
    expect(result.text).toContain('Trình duyệt gửi yêu cầu lạ');
    expect(result.closed).toBe(true);
    expect(seen).not.toContain('/smuggled');
  });

  it('keeps serving well-formed requests afterwards', async () => {
    const result = await curl(proxy.port, `http://origin.test:${originPort}/after`, { args: ['--data-binary', 'hello', '-H', 'Transfer-Encoding: chunked'] });
    expect(result.body).toBe('ok');
  });
});

describe('origin responses with malformed framing', () => {
  it.each(ORIGIN_REFUSED.map((c, i) => [c.name, c, i] as const))('%s', async (_name, testCase, index) => {
    const result = await rawExchange(
      proxy.port,
      `GET http://origin.test:${originPort}/origin/${index} HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n`,
    );
    expect(result.closed).toBe(true);
    expect(result.text).not.toContain('injected');
    if (testCase.expect === 'page') {
      expect(rawStatus(result.text)).toBe(502);
      expect(result.text).toContain('Trang web bị lỗi');
    } else {
      // Part of the body was on its way: the client is cut off (whatever reached it is a
      // 200 head and some body), and must not take the cut-off body for a whole one.
      expect([0, 200]).toContain(rawStatus(result.text));
      expect(result.text).not.toMatch(/\r\n0\r\n\r\n$/);
    }
    // The origin connection was not returned to the pool poisoned: the next request is served whole.
    expect(await servedWhole()).toBe(true);
  });
});
