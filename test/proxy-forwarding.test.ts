import { createHash } from 'node:crypto';
import { readReviewRequests } from '../src/events/log.js';
import { request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  curl,
  type Origin,
  policyYaml,
  rawExchange,
  rawStatus,
  refusedPort,
  type RunningGateway,
  startGateway,
  startHttpOrigin,
  storedEventsUntil,
} from './harness/index.js';

const BIG = Buffer.alloc(8 * 1024 * 1024, 'abcdefghij');
const BIG_SHA = createHash('sha256').update(BIG).digest('hex');

let origin: Origin;
let proxy: RunningGateway;

beforeAll(async () => {
  origin = await startHttpOrigin((req, res) => {
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG.length });
      res.end(BIG);
    } else if (req.url === '/hop') {
      res.writeHead(200, { connection: 'x-private, keep-alive', 'x-private': 'secret', 'keep-alive': 'timeout=5', 'x-kept': 'yes' });
      res.end('hop');
    } else if (req.url === '/upload') {
      const hash = createHash('sha256');
      let length = 0;
      req.on('data', (c: Buffer) => {
        hash.update(c);
        length += c.length;
      });
      req.on('end', () => res.end(JSON.stringify({ length, sha: hash.digest('hex'), te: req.headers['transfer-encoding'] ?? null })));
    } else if (req.url === '/echo-headers') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ raw: req.rawHeaders }));
    } else if (req.url === '/chunked') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('một ');
      setTimeout(() => res.end('hai'), 50);
    } else {
      res.end('ok');
    }
  });
  // Upgrades (WebSocket): the origin answers 101 and then echoes bytes back in upper case.
  origin.server.on('upgrade', (req: { headers: Record<string, string | undefined> }, socket: import('node:net').Socket) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${req.headers.upgrade}\r\nX-Seen-Host: ${req.headers.host}\r\n\r\n`);
    socket.on('data', (c: Buffer) => socket.write(c.toString().toUpperCase()));
  });
  proxy = await startGateway({
    rules: {
      'policy.yaml': policyYaml({ defaultProfile: 'hs', profiles: { hs: { name: 'Học sinh', blockCategories: ['games'] } } }),
      'categories/games/domains': 'game.test\n',
    },
    hosts: '127.0.0.1 origin.test game.test\n',
  });
});

afterAll(async () => {
  await proxy?.stop();
  await origin?.close();
});

describe('forwarding', () => {
  it('streams a large response intact to a slow reader (back-pressure, no loss)', async () => {
    const body = await new Promise<Buffer>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: proxy.port, path: `http://origin.test:${origin.port}/big` }, (res) => {
        const chunks: Buffer[] = [];
        // Read slowly at first so the proxy must pause the origin.
        res.pause();
        setTimeout(() => res.resume(), 300);
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    expect(body.length).toBe(BIG.length);
    expect(createHash('sha256').update(body).digest('hex')).toBe(BIG_SHA);
  });

  it('forwards request bodies, fixed length and chunked', async () => {
    const payload = Buffer.alloc(300_000, 'x');
    const sha = createHash('sha256').update(payload).digest('hex');
    const fixed = await curl(proxy.port, `http://origin.test:${origin.port}/upload`, {
      args: ['--data-binary', `@-`, '-H', 'content-type: application/octet-stream'],
      stdin: payload,
    });
    expect(JSON.parse(fixed.body)).toMatchObject({ length: payload.length, sha });
    const chunked = await curl(proxy.port, `http://origin.test:${origin.port}/upload`, {
      args: ['--data-binary', '@-', '-H', 'transfer-encoding: chunked'],
      stdin: payload,
    });
    expect(JSON.parse(chunked.body)).toMatchObject({ length: payload.length, sha, te: 'chunked' });
  });

  it('drops hop-by-hop response headers, including those Connection lists, and adds Via', async () => {
    const result = await curl(proxy.port, `http://origin.test:${origin.port}/hop`);
    expect(result.status).toBe(200);
    expect(result.headers['x-kept']).toBe('yes');
    expect(result.headers['x-private']).toBeUndefined();
    expect(result.headers['keep-alive'] ?? '').not.toBe('timeout=5');
    expect(result.headers.via).toBe('1.1 lachan');
  });

  it('drops hop-by-hop request headers and those Connection lists, keeps repeated fields, and chains Via', async () => {
    const result = await curl(proxy.port, `http://origin.test:${origin.port}/echo-headers`, {
      args: [
        '-H',
        'Connection: X-Lab-Secret',
        '-H',
        'X-Lab-Secret: 42',
        '-H',
        'Via: 1.0 may-chu-truong',
        '-H',
        'X-Forwarded-For: 10.1.2.3',
        '-H',
        'X-Repeat: a',
        '-H',
        'X-Repeat: b',
        '-H',
        'Keep-Alive: timeout=9',
      ],
    });
    const raw = (JSON.parse(result.body) as { raw: string[] }).raw;
    const fields = new Map<string, string[]>();
    for (let i = 0; i < raw.length; i += 2) fields.set(raw[i]!.toLowerCase(), [...(fields.get(raw[i]!.toLowerCase()) ?? []), raw[i + 1]!]);
    expect(fields.has('x-lab-secret')).toBe(false);
    expect(fields.has('x-forwarded-for')).toBe(false);
    expect(fields.get('keep-alive')).not.toEqual(['timeout=9']);
    expect(fields.get('x-repeat')).toEqual(['a', 'b']);
    expect(fields.get('via')).toEqual(['1.0 may-chu-truong, 1.1 lachan']);
    expect(fields.get('host')).toEqual([`origin.test:${origin.port}`]);
  });

  it('sets YouTube-Restrict for a profile with YouTube safe search, replacing what the client sent', async () => {
    const strict = await startGateway({
      rules: { 'policy.yaml': 'version: 1\ndefault_profile: th\nprofiles:\n  th:\n    name: "Tiểu học"\n    safe_search: { youtube: strict }\n' },
      hosts: '127.0.0.1 www.youtube.com\n',
    });
    try {
      const result = await curl(strict.port, `http://www.youtube.com:${origin.port}/echo-headers`, { args: ['-H', 'YouTube-Restrict: None'] });
      const raw = (JSON.parse(result.body) as { raw: string[] }).raw;
      const values = raw.filter((_, i) => i % 2 === 1 && raw[i - 1]!.toLowerCase() === 'youtube-restrict');
      expect(values).toEqual(['Strict']);
    } finally {
      await strict.stop();
    }
  });

  it('relays a chunked response as it comes', async () => {
    const result = await curl(proxy.port, `http://origin.test:${origin.port}/chunked`);
    expect(result.body).toBe('một hai');
  });

  it('reuses one client connection for several requests (keep-alive)', async () => {
    const url = `http://origin.test:${origin.port}/`;
    const result = await curl(proxy.port, url, { args: ['-v', url, url] });
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/Re-using existing connection|Reusing existing connection/);
  });

  it('survives a client that disconnects mid-response, and keeps serving', async () => {
    await new Promise<void>((resolve) => {
      const socket = connect(proxy.port, '127.0.0.1', () => socket.write(`GET http://origin.test:${origin.port}/big HTTP/1.1\r\nHost: origin.test\r\n\r\n`));
      socket.once('data', () => {
        socket.destroy();
        resolve();
      });
    });
    expect((await curl(proxy.port, `http://origin.test:${origin.port}/`)).body).toBe('ok');
  });

  it('answers a blocked request on a kept-alive connection and keeps the connection usable', async () => {
    const blocked = `GET http://game.test:${origin.port}/ HTTP/1.1\r\nHost: game.test\r\n\r\n`;
    const allowed = `GET http://origin.test:${origin.port}/ HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n`;
    const { text } = await rawExchange(proxy.port, blocked + allowed);
    expect(rawStatus(text)).toBe(403);
    expect(text).toMatch(/HTTP\/1\.1 200 OK[\s\S]*\r\n\r\nok$/);
  });

  it('splices an allowed upgrade both ways and refuses a blocked one', async () => {
    const echoed = await new Promise<string>((resolve, reject) => {
      const socket = connect(proxy.port, '127.0.0.1', () =>
        socket.write(`GET http://origin.test:${origin.port}/ws HTTP/1.1\r\nHost: evil.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`),
      );
      let text = '';
      socket.on('data', (c: Buffer) => {
        text += c.toString();
        if (text.includes('\r\n\r\n') && !text.includes('XIN CHÀO')) socket.write('xin chào');
        if (text.includes('XIN CHÀO')) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('error', reject);
    });
    expect(echoed).toMatch(/^HTTP\/1\.1 101 /);
    expect(echoed).toContain(`X-Seen-Host: origin.test:${origin.port}`);
    const blocked = await rawExchange(
      proxy.port,
      `GET http://game.test:${origin.port}/ws HTTP/1.1\r\nHost: game.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`,
    );
    expect(rawStatus(blocked.text)).toBe(403);
    expect(blocked.text).toMatch(/X-Lachan-Block: games/i);
  });

  it('blocks and records a WebSocket upgrade to `host.` as `host` (one spelling per site)', async () => {
    // A host no earlier test blocked: repeats of one host within a short window fold into one event.
    const blocked = await rawExchange(
      proxy.port,
      `GET http://WS.Game.test.:${origin.port}/ws-dot?room=7 HTTP/1.1\r\nHost: ws.game.test.\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`,
    );
    expect(rawStatus(blocked.text)).toBe(403);
    expect(blocked.text).toMatch(/X-Lachan-Block: games/i);
    expect(blocked.text).toContain('<dd>ws.game.test</dd>');
    expect(blocked.text).not.toContain('ws.game.test.');
    const events = await storedEventsUntil(proxy.dataDir, (e) => e.path === '/ws-dot');
    expect(events.find((e) => e.path === '/ws-dot')).toMatchObject({ host: 'ws.game.test', category: 'games', method: 'GET' });
  });

  it('answers an upgrade to an origin that refuses the connection with 502', async () => {
    const port = await refusedPort();
    const { text, closed } = await rawExchange(
      proxy.port,
      `GET http://origin.test:${port}/ws HTTP/1.1\r\nHost: origin.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`,
    );
    expect(closed).toBe(true);
    expect(rawStatus(text)).toBe(502);
  });

  it('records a review request posted to the proxy itself (origin form) and refuses other origin-form paths', async () => {
    const body = 'ref=AB12&host=game.test&category=games&profile=hs&note=c%E1%BA%A7n+cho+b%C3%A0i+t%E1%BA%ADp';
    const posted = await curl(null, `http://127.0.0.1:${proxy.port}/lachan/review`, { args: ['--data', body] });
    expect(posted.status).toBe(200);
    expect(posted.body).toContain('Đã gửi đề nghị');
    let reviews = readReviewRequests(proxy.dataDir);
    for (let i = 0; i < 20 && reviews.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      reviews = readReviewRequests(proxy.dataDir);
    }
    expect(reviews.at(-1)).toMatchObject({ host: 'game.test', category: 'games', note: 'cần cho bài tập' });
    expect((await curl(null, `http://127.0.0.1:${proxy.port}/admin`)).status).toBe(400);
    expect((await curl(null, `http://127.0.0.1:${proxy.port}/lachan/review`)).status).toBe(400);
  });
});
