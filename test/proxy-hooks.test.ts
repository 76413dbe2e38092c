import { writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicy } from '../src/rules/loader.js';
import type { Decision } from '../src/policy/types.js';
import type { Flow } from '../src/proxy/flow.js';
import { decideByPolicy, type DecideInput } from '../src/proxy/hooks.js';
import { withDefaultLimits } from '../src/proxy/limits.js';
import type { BlockRecord, BlockRecorder, ReviewRecord, ReviewRecorder } from '../src/proxy/ports.js';
import { Resolver } from '../src/proxy/resolver.js';
import { ProxyServer } from '../src/proxy/server.js';
import { createUpstream } from '../src/proxy/upstream.js';
import { curl, makeRulesDir, type Origin, policyYaml, rawExchange, rawStatus, removeDir, startHttpOrigin } from './harness/index.js';

/**
 * The proxy in this process, on loopback, with a real origin and a real curl, and the
 * hooks and ports later work attaches to: what a hook decides is what the client gets,
 * every decision is signalled once, and blocks reach whatever recorder is plugged in.
 */
let origin: Origin;
let proxy: ProxyServer;
let port: number;
let rulesDir: string;
const decided: DecideInput[] = [];
const signalled: { flow: Flow; decision: Decision }[] = [];
const blocks: BlockRecord[] = [];
const reviews: ReviewRecord[] = [];
/** Hosts the decide hook closes, whatever the rules say (as exam mode would). */
const examClosed = new Set(['exam-closed.test']);

beforeAll(async () => {
  origin = await startHttpOrigin();
  rulesDir = makeRulesDir({
    'policy.yaml': policyYaml({ defaultProfile: 'hs', profiles: { hs: { name: 'Học sinh', blockCategories: ['games'] } } }),
    'categories/games/domains': 'game.test\n',
  });
  const hosts = path.join(rulesDir, 'hosts');
  writeFileSync(hosts, '127.0.0.1 origin.test exam-closed.test\n');
  const resolver = new Resolver(hosts);
  const limits = withDefaultLimits({});
  const recorder: BlockRecorder & ReviewRecorder = {
    record: (block) => {
      blocks.push(block);
      return `REF${blocks.length}`;
    },
    recordReviewRequest: (request) => reviews.push(request),
  };
  proxy = new ProxyServer({
    policy: await loadPolicy(rulesDir),
    resolver,
    recorder,
    upstream: createUpstream(resolver, limits),
    logger: pino({ level: 'silent' }),
    limits,
    advertisedProxy: () => `127.0.0.1:${port}`,
    clientName: (address) => address,
    hooks: {
      decide: (input) => {
        decided.push(input);
        const decision = decideByPolicy(input);
        if (!examClosed.has(input.flow.target.host)) return decision;
        return { action: 'block', profile: decision.profile, category: 'exam', reason: 'domain', rule: 'exam-closed.test', source: null };
      },
      onDecision: (flow, decision) => signalled.push({ flow, decision }),
    },
  });
  port = await proxy.listen(0, '127.0.0.1');
});

afterAll(async () => {
  await proxy?.close(100);
  await origin?.close();
  removeDir(rulesDir);
});

describe('hooks on the one request path', () => {
  it('gives the decide hook the canonical target and the request time, and answers what it decides', async () => {
    const before = Date.now();
    const allowed = await curl(port, `http://Origin.TEST.:${origin.port}/a?b=1`);
    expect(allowed.status).toBe(200);
    const input = decided.find((d) => d.flow.target.path === '/a')!;
    expect(input.flow).toMatchObject({ mode: 'forward', method: 'GET', target: { host: 'origin.test', port: origin.port, pathAndQuery: '/a?b=1' } });
    expect(input.time).toBeGreaterThanOrEqual(before);
    expect(input.time).toBeLessThanOrEqual(Date.now());

    const closed = await curl(port, `http://exam-closed.test:${origin.port}/`);
    expect(closed.status).toBe(403);
    expect(closed.headers['x-lachan-block']).toBe('exam');
    expect(blocks.at(-1)).toMatchObject({ host: 'exam-closed.test', category: 'exam', path: '/', method: 'GET' });
    expect(closed.body).toContain(`REF${blocks.length}`);
  });

  it('signals every decision once, allowed and blocked, for requests, tunnels and upgrades', async () => {
    signalled.length = 0;
    await curl(port, `http://origin.test:${origin.port}/signal`);
    await curl(port, `http://game.test:${origin.port}/signal`);
    const tunnel = await rawExchange(port, 'CONNECT game.test:443 HTTP/1.1\r\nHost: game.test:443\r\n\r\n');
    expect(rawStatus(tunnel.text)).toBe(403);
    const upgrade = await rawExchange(
      port,
      `GET http://game.test:${origin.port}/ws HTTP/1.1\r\nHost: game.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`,
    );
    expect(rawStatus(upgrade.text)).toBe(403);
    expect(signalled.map(({ flow, decision }) => [flow.mode, flow.target.host, decision.action])).toEqual([
      ['forward', 'origin.test', 'allow'],
      ['forward', 'game.test', 'block'],
      ['connect', 'game.test', 'block'],
      ['upgrade', 'game.test', 'block'],
    ]);
    // A tunnel is recorded as the event model has it: CONNECT to `/`.
    expect(blocks.find((b) => b.method === 'CONNECT')).toMatchObject({ host: 'game.test', path: '/' });
  });

  it('stores review requests through the review port', async () => {
    const posted = await curl(port, `http://game.test:${origin.port}/__lachan__/review`, {
      args: ['--data', 'ref=REF1&host=game.test&category=games&note=b%C3%A0i+t%E1%BA%ADp'],
    });
    expect(posted.status).toBe(200);
    expect(reviews.at(-1)).toMatchObject({ kind: 'review', host: 'game.test', eventRef: 'REF1', profile: 'hs', note: 'bài tập' });
  });
});
