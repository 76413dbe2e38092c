import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addGatewayUser,
  TEACHER_DEVICE,
  STAFF_PASSWORD,
  type Collector,
  curl,
  lachan,
  makeRulesDir,
  type Origin,
  policyYaml,
  type RunningGateway,
  StaffBrowser,
  startCollector,
  startGateway,
  startHttpOrigin,
  stopCollector,
} from './harness/index.js';

/**
 * A gateway of two worker processes shipping to a district collector: what a teacher
 * does on one worker holds on the other, and an override reaches the collector as an
 * event of its own (docs/classroom.md).
 */

let collector: Collector;
let centralData: string;
let origin: Origin;
let gateway: RunningGateway;

beforeAll(async () => {
  const work = mkdtempSync(path.join(tmpdir(), 'lachan-classroom-district-'));
  centralData = path.join(work, 'central');
  collector = await startCollector(centralData);
  const school = JSON.parse(lachan(['central', 'school', 'add', '--name', 'THCS Mù Cang Chải', '--data', centralData, '--json']).stdout) as {
    id: string;
    token: string;
  };
  const tokenFile = path.join(work, 'token');
  writeFileSync(tokenFile, `${school.token}\n`, { mode: 0o600 });
  origin = await startHttpOrigin((_req, res) => res.end('ok'));
  const rulesDir = makeRulesDir({
    'policy.yaml': policyYaml({
      defaultProfile: 'hs',
      profiles: { hs: { name: 'Học sinh', blockCategories: ['games'] }, gv: { name: 'Giáo viên' } },
      clients: [{ cidr: '127.0.9.0/24', profile: 'gv' }],
      extra: 'proxy_auth:\n  users_file: users\n  profiles:\n    cogiao: gv\n',
    }),
    'categories/games/domains': 'game.test\n',
  });
  addGatewayUser(rulesDir, 'cogiao', STAFF_PASSWORD);
  gateway = await startGateway({
    rulesDir,
    workers: 2,
    hosts: '127.0.0.1 game.test\n',
    args: ['--staff-profiles', 'gv', '--central', collector.url, '--school', school.id, '--token-file', tokenFile],
  });
});

afterAll(async () => {
  await gateway?.stop();
  await stopCollector(collector);
  await origin?.close();
});

async function collectorEvents(): Promise<Record<string, unknown>[]> {
  const out = lachan(['central', 'events', '--data', centralData, '--json']).stdout.trim();
  return out === '' ? [] : out.split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('classroom on a gateway of several processes', () => {
  it('holds a teacher session and an override on every worker, and ships the override to the district', async () => {
    const teacher = new StaffBrowser(gateway.port, TEACHER_DEVICE);
    expect((await teacher.login('cogiao', STAFF_PASSWORD)).status).toBe(200);
    // Each curl is a new connection, handed to the workers in turn: the session is known to both.
    for (let i = 0; i < 4; i++) expect((await teacher.get()).body).toContain('cogiao');
    const url = `http://game.test:${origin.port}/`;
    expect((await curl(gateway.port, url)).status).toBe(403);
    expect((await teacher.act({ do: 'override-start', host: 'game.test', profile: 'hs', minutes: '45', reason: 'Tiết Tin học' })).status).toBe(200);
    // The other worker reads the state file within a second.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await curl(gateway.port, url)).status);
    expect(statuses).toEqual([200, 200, 200, 200]);

    let events: Record<string, unknown>[] = [];
    for (let attempt = 0; attempt < 60 && !events.some((e) => e.reason === 'override'); attempt++) {
      await new Promise((r) => setTimeout(r, 250));
      events = await collectorEvents();
    }
    expect(events.find((e) => e.reason === 'override')).toMatchObject({
      host: 'game.test',
      profile: 'hs',
      category: 'games',
      method: 'OVERRIDE',
      rule: 'Tiết Tin học',
      source: 'classroom:profile:hs:45m',
    });
  });
});
