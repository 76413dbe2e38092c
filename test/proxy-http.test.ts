import { connect } from 'node:net';
import { get as httpGet } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, lachan, type RunningGateway, startGateway, startHttpOrigin, startHttpsOrigin, storedEventsUntil } from './harness/index.js';

const POLICY = `version: 1
default_profile: tieu-hoc
profiles:
  tieu-hoc:
    name: "Tiểu học"
    block_categories: [gambling, self-harm]
    block_keywords: [cờ bạc]
  thpt:
    name: "Trung học phổ thông"
    block_categories: []
  giao-vien:
    name: "Giáo viên"
    block_categories: []
    block_ip_literals: false
connect_ports: [443]
clients:
  - cidr: 127.0.0.2/32
    profile: thpt
`;

const RULES = {
  'policy.yaml': POLICY,
  'categories/gambling/domains': 'bet.test\n',
  'categories/self-harm/domains': 'harm.test\n',
};

let origin: { server: Server; port: number };
let tlsOrigin: { server: Server; port: number; caPem: string };
let proxy: RunningGateway;

beforeAll(async () => {
  origin = await startHttpOrigin();
  tlsOrigin = await startHttpsOrigin('secure.test');
  proxy = await startGateway({
    rules: RULES,
    hosts: '127.0.0.1 origin.test bet.test harm.test secure.test\n',
  });
});

afterAll(async () => {
  await proxy.stop();
  origin.server.close();
  tlsOrigin.server.close();
});

describe('plain HTTP through the proxy', () => {
  it('forwards an allowed request to the host of the target, with Via and without X-Forwarded-For', async () => {
    const result = await curl(proxy.port, `http://origin.test:${origin.port}/page?x=1`);
    expect(result.status).toBe(200);
    const seen = JSON.parse(result.body);
    expect(seen).toMatchObject({ host: `origin.test:${origin.port}`, url: '/page?x=1', method: 'GET' });
    expect(seen.headers.via).toBe('1.1 lachan');
    expect(seen.headers['x-forwarded-for']).toBeUndefined();
    expect(seen.headers['proxy-connection']).toBeUndefined();
    expect(result.headers.via).toContain('lachan');
  });

  it('rewrites a Host header naming another host: the request target decides', async () => {
    const result = await curl(proxy.port, `http://origin.test:${origin.port}/`, ['-H', 'Host: bet.test']);
    expect(result.status).toBe(200);
    expect(JSON.parse(result.body).host).toBe(`origin.test:${origin.port}`);
    const blocked = await curl(proxy.port, `http://bet.test:${origin.port}/`, ['-H', `Host: origin.test:${origin.port}`]);
    expect(blocked.status).toBe(403);
  });

  it('blocks with 403, X-Lachan-Block and the Vietnamese block page with hotlines and a reference', async () => {
    const result = await curl(proxy.port, `http://www.bet.test:${origin.port}/casino?q=1`);
    expect(result.status).toBe(403);
    expect(result.headers['x-lachan-block']).toBe('gambling');
    expect(result.body).toContain('<html lang="vi">');
    expect(result.body).toContain('www.bet.test');
    expect(result.body).toContain('Cờ bạc');
    expect(result.body).toContain('Tiểu học');
    expect(result.body).toContain('111');
    expect(result.body).toContain('1800 1776');
    expect(result.body).toMatch(/Mã số<\/dt><dd>[0-9A-Z]{4,}/);
    expect(result.body).toContain('Nhờ thầy cô xem lại');
  });

  it('puts the hotlines first for self-harm', async () => {
    const result = await curl(proxy.port, `http://harm.test:${origin.port}/`);
    expect(result.status).toBe(403);
    expect(result.body.indexOf('111')).toBeLessThan(result.body.indexOf('Mã số'));
  });

  it('blocks a keyword in the query, and userinfo does not disguise the host', async () => {
    expect((await curl(proxy.port, `http://origin.test:${origin.port}/search?q=co+bac`)).status).toBe(403);
    expect((await curl(proxy.port, `http://origin.test:${origin.port}@bet.test:${origin.port}/`)).status).toBe(403);
  });

  it('decides by source address: 127.0.0.2 is thpt and may visit the gambling host', async () => {
    const result = await curl(proxy.port, `http://bet.test:${origin.port}/`, ['--interface', '127.0.0.2']);
    expect(result.status).toBe(200);
  });

  it('refuses loopback and link-local destinations not named in the hosts file', async () => {
    const loop = await curl(proxy.port, `http://127.0.0.1:${origin.port}/`);
    expect(loop.status).toBe(403);
    expect((await curl(proxy.port, `http://0x7f.1:${origin.port}/`)).status).toBe(403);
    expect((await curl(proxy.port, 'http://169.254.169.254/latest/meta-data/')).status).toBe(403);
    expect((await curl(proxy.port, `http://localhost:${origin.port}/`)).status).toBe(403);
  });

  it('answers upstream failures with Vietnamese error pages', async () => {
    const refused = await curl(proxy.port, 'http://origin.test:1/');
    expect(refused.status).toBe(502);
    expect(refused.body).toContain('Trang web đang tắt');
    expect(refused.body).not.toContain('chậm');
    const dns = await curl(proxy.port, 'http://no-such-name.invalid/');
    expect(dns.status).toBe(502);
    expect(dns.body).toContain('Không tìm thấy');
  });

  it('serves the PAC file and nothing else of the gateway in origin form', async () => {
    const pac = await fetch(`http://127.0.0.1:${proxy.port}/proxy.pac`);
    expect(pac.status).toBe(200);
    const script = await pac.text();
    expect(script).toContain('FindProxyForURL');
    // Devices are told the address they reached the proxy at (on a gateway: its LAN address).
    const viaLan = await new Promise<string>((resolve) => {
      httpGet({ host: '127.0.0.1', port: proxy.port, path: '/wpad.dat', headers: { host: '10.10.0.1:3128' } }, (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve(text));
      });
    });
    expect(viaLan).toContain('PROXY 10.10.0.1:3128');
    expect(script).not.toContain('10.10.0.1');
    const other = await fetch(`http://127.0.0.1:${proxy.port}/etc/passwd`);
    expect(other.status).toBe(400);
  });

  it('records the block page review request', async () => {
    const result = await curl(proxy.port, `http://bet.test:${origin.port}/__lachan__/review`, [
      '--data',
      'ref=ABCD&host=bet.test&category=gambling&profile=tieu-hoc&note=c%E1%BA%A7n+cho+b%C3%A0i+h%E1%BB%8Dc',
    ]);
    expect(result.status).toBe(200);
    expect(result.body).toContain('Đã gửi đề nghị');
    // Staff find it in the local database, with a pseudonym instead of the address.
    const reviews = lachan(['logs', '--data', proxy.dataDir, '--reviews', '--json'])
      .stdout.trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(reviews).toEqual(expect.arrayContaining([expect.objectContaining({ host: 'bet.test', category: 'gambling', note: 'cần cho bài học' })]));
    expect(JSON.stringify(reviews)).not.toContain('127.0.0.1');
  });
});

describe('CONNECT', () => {
  it('tunnels an allowed HTTPS site untouched: the client sees the origin certificate', async () => {
    const caFile = path.join(proxy.dataDir, '..', 'origin-ca.pem');
    writeFileSync(caFile, tlsOrigin.caPem);
    const extra = await startGateway({
      rules: { ...RULES, 'policy.yaml': POLICY.replace('connect_ports: [443]', `connect_ports: [443, ${tlsOrigin.port}]`) },
      hosts: '127.0.0.1 secure.test\n',
    });
    try {
      const result = await curl(extra.port, `https://secure.test:${tlsOrigin.port}/hello`, ['--cacert', caFile]);
      expect(result.code).toBe(0);
      expect(result.status).toBe(200);
      expect(JSON.parse(result.body).url).toBe('/hello');
    } finally {
      await extra.stop();
    }
  });

  it('refuses a blocked host with 403 and X-Lachan-Block when no CA exists', async () => {
    const result = await curl(proxy.port, 'https://bet.test/', ['--proxy-insecure', '-k']);
    expect(result.status).toBe(403);
    expect(result.headers['x-lachan-block']).toBe('gambling');
  });

  it('refuses ports outside connect_ports', async () => {
    const result = await curl(proxy.port, `https://origin.test:${origin.port}/`);
    expect(result.status).toBe(403);
    expect(result.headers['x-lachan-block']).toBe('port');
  });
});

describe('malformed and hostile requests', () => {
  function raw(data: string): Promise<string> {
    return new Promise((resolve) => {
      const socket = connect(proxy.port, '127.0.0.1', () => socket.write(data));
      let received = '';
      socket.on('data', (chunk) => (received += chunk.toString()));
      socket.on('close', () => resolve(received));
      socket.on('error', () => resolve(received));
      socket.setTimeout(5000, () => socket.destroy());
    });
  }

  it.each([
    ['garbage', 'HELLO THERE\r\n\r\n', 400],
    [
      'both Content-Length and Transfer-Encoding',
      `POST http://origin.test:PORT/ HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      400,
    ],
    ['two different Content-Length', `POST http://origin.test:PORT/ HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde`, 400],
    ['a bad CONNECT authority', 'CONNECT not a host HTTP/1.1\r\n\r\n', 400],
  ])('%s → %s and the proxy keeps serving', async (_name, request, status) => {
    const response = await raw(request.replaceAll('PORT', String(origin.port)));
    expect(response).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect((await curl(proxy.port, `http://origin.test:${origin.port}/`)).status).toBe(200);
  });

  it('answers oversized headers with 431', async () => {
    const response = await raw(`GET http://origin.test:${origin.port}/ HTTP/1.1\r\nHost: origin.test\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`);
    expect(response).toMatch(/^HTTP\/1\.1 431 /);
  });
});

describe('events', () => {
  it('stores every block in the local database, without the query string', async () => {
    // A host no earlier test blocked: a repeat visit within a short window is folded into the earlier event.
    await curl(proxy.port, `http://rieng.bet.test:${origin.port}/secret/path?student=nguyen`);
    const lines = await storedEventsUntil(proxy.dataDir, (e) => e.path === '/secret/path');
    const event = lines.find((e) => e.path === '/secret/path')!;
    expect(event).toMatchObject({ host: 'rieng.bet.test', category: 'gambling', profile: 'tieu-hoc', method: 'GET', count: 1 });
    expect(JSON.stringify(event)).not.toContain('nguyen');
    expect(JSON.stringify(event)).not.toContain('127.0.0.1');
    expect(readFileSync(path.join(proxy.dataDir, 'events.db')).length).toBeGreaterThan(0);
  });
});

describe('one spelling of a host', () => {
  it('blocks a trailing-dot host and records it without the dot', async () => {
    const result = await curl(proxy.port, `http://bet.test.:${origin.port}/dot`);
    expect(result.status).toBe(403);
    expect(result.body).toContain('<dd>bet.test</dd>');
  });
});
