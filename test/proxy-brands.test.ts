import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, type RunningGateway, startGateway, startHttpOrigin } from './harness/index.js';

const RULES = {
  'policy.yaml': `version: 1
default_profile: thcs
profiles:
  thcs:
    name: "THCS"
    block_categories: [gambling]
`,
  // The old list knows the brand under two suffixes only.
  'categories/gambling/domains': '3bet.bike\n3bet.ski\n',
  'categories/gambling/brands': '# derive brands from the lists\n',
  'categories/gambling/host-signals': 'nhà cái\n',
};

let origin: { server: Server; port: number };
let proxy: RunningGateway;

beforeAll(async () => {
  origin = await startHttpOrigin();
  proxy = await startGateway({ rules: RULES, hosts: '127.0.0.1 3bet.newtld www.3bet.newtld other.newtld top-nhacai.test news.test\n' });
});

afterAll(async () => {
  await proxy.stop();
  origin.server.close();
});

describe('brand rules and host signals through the proxy', () => {
  it('blocks a listed brand under a suffix no list has, with the block page', async () => {
    for (const host of ['3bet.newtld', 'www.3bet.newtld']) {
      const result = await curl(proxy.port, `http://${host}:${origin.port}/`);
      expect(result.status, host).toBe(403);
      expect(result.headers['x-lachan-block']).toBe('gambling');
      expect(result.body).toContain(host);
    }
  });

  it('blocks a host whose name carries a host signal, but not a path that does', async () => {
    const signal = await curl(proxy.port, `http://top-nhacai.test:${origin.port}/`);
    expect(signal.status).toBe(403);
    expect(signal.headers['x-lachan-block']).toBe('gambling');
    const news = await curl(proxy.port, `http://news.test:${origin.port}/bai-viet/nhacai-bi-bat`);
    expect(news.status).toBe(200);
  });

  it('forwards a neighbour under the same new suffix', async () => {
    const result = await curl(proxy.port, `http://other.newtld:${origin.port}/`);
    expect(result.status).toBe(200);
  });
});
