import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Collector, curl, lachan, type RunningGateway, startCollector, startGateway, startHttpOrigin, stopCollector } from './harness/index.js';

const POLICY = `version: 1
default_profile: tieu-hoc
profiles:
  tieu-hoc:
    name: "Tiểu học"
    block_categories: [gambling, adult]
`;

let centralData: string;
let collector: Collector;
let origin: { server: Server; port: number };
let gateway: RunningGateway;
let school: { id: string; token: string };

beforeAll(async () => {
  const work = mkdtempSync(path.join(tmpdir(), 'lachan-district-'));
  centralData = path.join(work, 'central');
  collector = await startCollector(centralData);
  school = JSON.parse(lachan(['central', 'school', 'add', '--name', 'TH Trạm Tấu', '--data', centralData, '--json']).stdout);
  const tokenFile = path.join(work, 'token');
  writeFileSync(tokenFile, `${school.token}\n`, { mode: 0o600 });
  origin = await startHttpOrigin();
  gateway = await startGateway({
    rules: { 'policy.yaml': POLICY, 'categories/gambling/domains': 'bet.test\n', 'categories/adult/domains': 'adult.test\n' },
    hosts: '127.0.0.1 bet.test adult.test\n',
    args: ['--central', collector.url, '--school', school.id, '--token-file', tokenFile],
  });
});

afterAll(async () => {
  await gateway?.stop();
  await stopCollector(collector);
  origin?.server.close();
});

async function collectorEvents(): Promise<Record<string, unknown>[]> {
  const out = lachan(['central', 'events', '--data', centralData, '--json']).stdout.trim();
  return out === '' ? [] : out.split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('a school gateway shipping to the district collector', () => {
  it('delivers each visit made through the proxy to the collector once, with its requests counted, without queries or addresses', async () => {
    // Three pages of one site from one device within moments are one visit: one event, count 3.
    for (let i = 0; i < 3; i++) expect((await curl(gateway.port, `http://bet.test:${origin.port}/page${i}?hoc_sinh=lan`)).status).toBe(403);
    expect((await curl(gateway.port, `http://adult.test:${origin.port}/`)).status).toBe(403);
    let events: Record<string, unknown>[] = [];
    const gamblingCount = () => events.find((e) => e.category === 'gambling')?.count;
    for (let attempt = 0; attempt < 60 && (events.length < 2 || gamblingCount() !== 3); attempt++) {
      await new Promise((r) => setTimeout(r, 250));
      events = await collectorEvents();
    }
    expect(events).toHaveLength(2);
    expect(new Set(events.map((e) => e.id)).size).toBe(2);
    expect(events.filter((e) => e.category === 'gambling').map((e) => [e.path, e.count])).toEqual([['/page0', 3]]);
    expect(events.filter((e) => e.category === 'adult').map((e) => e.count)).toEqual([1]);
    const text = JSON.stringify(events);
    expect(text).not.toContain('hoc_sinh');
    expect(text).not.toContain('127.0.0.1');
  });

  it('writes the yearly report for Phòng VH-TT from what the collector holds', async () => {
    const year = new Date().getUTCFullYear();
    const out = path.join(centralData, 'bao-cao.md');
    const result = lachan(['report', '--year', String(year), '--data', centralData, '--out', out]);
    expect(result.code).toBe(0);
    const report = readFileSync(out, 'utf8');
    expect(report).toMatch(new RegExp(`^# BÁO CÁO: .* năm ${year}$`, 'm'));
    // Visits, not requests: the three pages of bet.test are one.
    expect(report).toContain('Tổng số lượt truy cập bị chặn: 2 lượt');
    expect(report).toMatch(/\| Cờ bạc, cá độ \| 1 \| 50,0% \|/);
    expect(report).toMatch(/\| Tiểu học \| 2 \| 100,0% \|/);
    expect(report).toContain('TH Trạm Tấu');
    expect(lachan(['report', '--year', 'năm nay', '--data', centralData]).code).toBe(2);
  });
});
