import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditLineUntil,
  STUDENT_DEVICE,
  ROOM_DEVICE,
  TEACHER_DEVICE,
  STAFF_PASSWORD,
  curl,
  makeClassroomRules,
  lachan,
  type Origin,
  readAuditLines,
  readClassroomState,
  type RunningGateway,
  StaffBrowser,
  startClassroomGateway,
  startHostEchoOrigin,
  storedEventsUntil,
  waitUntil,
} from './harness/index.js';

/**
 * Teachers' overrides through a real gateway (docs/classroom.md): a blocked host opened
 * for a profile or a room until its end, across a restart and a rules reload, and
 * shipped as an event of its own. A "minute" lasts one second here.
 */

const OTHER_ROOM = '127.0.6.6';
const HOSTS = '127.0.0.1 game.test www.game.test video.test news.test\n';

let origin: Origin;
let rulesDir: string;
let gateway: RunningGateway;
let teacher: StaffBrowser;
/** The first gateway's data folder, which the restarted one is given (`--data`). */
let dataDir: string;

beforeAll(async () => {
  origin = await startHostEchoOrigin();
  rulesDir = makeClassroomRules({
    profiles: {
      hs: { name: 'Học sinh', blockCategories: ['games', 'video'] },
      nho: { name: 'Tiểu học', blockCategories: ['games', 'video'] },
    },
    clients: [{ cidr: '127.0.6.0/24', profile: 'nho' }],
    accounts: { thaygiao: 'giao-vien' },
    files: { 'categories/games/domains': 'game.test\n', 'categories/video/domains': 'video.test\n' },
  });
  gateway = await startClassroomGateway(rulesDir, HOSTS);
  dataDir = gateway.dataDir;
  teacher = new StaffBrowser(gateway.port, TEACHER_DEVICE);
  expect((await teacher.login('thaygiao', STAFF_PASSWORD)).status).toBe(200);
});

afterAll(async () => {
  await gateway?.stop();
  await origin?.close();
});

const url = (host: string): string => `http://${host}:${origin.port}/`;

describe('teacher overrides', () => {
  it('needs a reason, and a length within a lesson', async () => {
    const noReason = await teacher.act({ do: 'override-start', host: 'game.test', profile: 'hs', minutes: '10', reason: '  ' });
    expect(noReason.status).toBe(400);
    expect(noReason.body).toContain('Hãy ghi lý do');
    const tooLong = await teacher.act({ do: 'override-start', host: 'game.test', profile: 'hs', minutes: '91', reason: 'Tiết Tin học' });
    expect(tooLong.status).toBe(400);
    expect(readClassroomState(dataDir).overrides).toEqual([]);
  });

  it('opens a blocked host for one profile until its end, and ships it as an event of its own', async () => {
    expect((await curl(gateway.port, url('game.test'), { from: STUDENT_DEVICE })).status).toBe(403);
    const opened = await teacher.act({ do: 'override-start', host: 'game.test', profile: 'hs', minutes: '8', reason: 'Tiết Tin học: trò chơi lập trình' });
    expect(opened.status).toBe(200);
    const [override] = readClassroomState(dataDir).overrides;
    // The host and its subdomains, for that profile only; what is blocked for another reason stays blocked.
    expect((await curl(gateway.port, url('www.game.test'), { from: STUDENT_DEVICE })).body).toBe(`origin www.game.test:${origin.port}`);
    expect((await curl(gateway.port, url('game.test'), { from: OTHER_ROOM })).status).toBe(403);
    expect((await curl(gateway.port, url('video.test'), { from: STUDENT_DEVICE })).status).toBe(403);
    const tunnel = await curl(gateway.port, 'https://game.test:443/', { from: OTHER_ROOM });
    expect(tunnel.headers['x-lachan-block']).toBe('games');

    const events = await storedEventsUntil(dataDir, (e) => e.reason === 'override');
    const event = events.find((e) => e.reason === 'override');
    expect(event).toMatchObject({
      host: 'game.test',
      profile: 'hs',
      category: 'games',
      rule: 'Tiết Tin học: trò chơi lập trình',
      source: 'classroom:profile:hs:8m',
    });
    expect(JSON.stringify(event)).not.toContain('127.0.');
    expect(readAuditLines(dataDir).find((l) => l.action === 'classroom.override.start')?.details).toMatchObject({ by: 'thaygiao', id: override!.id });

    await waitUntil(override!.endsAt);
    expect((await curl(gateway.port, url('game.test'), { from: STUDENT_DEVICE })).status).toBe(403);
    const ended = await auditLineUntil(dataDir, (l) => l.action === 'classroom.override.end' && l.details.id === override!.id);
    expect(ended?.details).toMatchObject({ by: 'thaygiao', ended: 'time' });
  });

  it('opens a host for one room only', async () => {
    expect(
      (await teacher.act({ do: 'override-start', host: 'video.test', profile: '', room: '127.0.5.0/24', minutes: '60', reason: 'Xem video thí nghiệm' }))
        .status,
    ).toBe(200);
    expect((await curl(gateway.port, url('video.test'), { from: ROOM_DEVICE })).status).toBe(200);
    expect((await curl(gateway.port, url('video.test'), { from: STUDENT_DEVICE })).status).toBe(403);
    const [override] = readClassroomState(dataDir).overrides.filter((o) => o.host === 'video.test');
    expect((await teacher.act({ do: 'end', id: override!.id })).status).toBe(200);
    expect((await curl(gateway.port, url('video.test'), { from: ROOM_DEVICE })).status).toBe(403);
  });

  it('stays open across a rules reload and a restart, and still ends on time', async () => {
    // Twenty seconds: room for a reload and a restart on a loaded machine.
    expect((await teacher.act({ do: 'override-start', host: 'game.test', profile: 'hs', minutes: '20', reason: 'Tiết Tin học' })).status).toBe(200);
    expect((await teacher.act({ do: 'exam-start', room: '127.0.6.0/24', minutes: '20' })).status).toBe(200);
    const { overrides, exams } = readClassroomState(dataDir);
    const override = overrides.find((o) => o.host === 'game.test')!;
    expect((await curl(gateway.port, url('game.test'), { from: STUDENT_DEVICE })).status).toBe(200);

    const reloads = gateway.logs.filter((l) => l.msg === 'rules reloaded').length;
    appendFileSync(path.join(rulesDir, 'categories/games/domains'), 'other-game.test\n');
    await gateway.waitForLog((l) => l.msg === 'rules reloaded' && gateway.logs.filter((m) => m.msg === 'rules reloaded').length > reloads);
    expect((await curl(gateway.port, url('game.test'), { from: STUDENT_DEVICE })).status).toBe(200);
    expect((await curl(gateway.port, url('news.test'), { from: OTHER_ROOM })).headers['x-lachan-block']).toBe('exam');

    expect(await gateway.stop()).toBe(0);
    gateway = await startClassroomGateway(rulesDir, HOSTS, dataDir);
    teacher.port = gateway.port;
    expect((await curl(gateway.port, url('game.test'), { from: STUDENT_DEVICE })).status).toBe(200);
    expect((await curl(gateway.port, url('news.test'), { from: OTHER_ROOM })).headers['x-lachan-block']).toBe('exam');
    // The teacher's session outlives the restart: it is signed with the data folder's key.
    expect((await teacher.get()).body).toContain('game.test');

    await waitUntil(Math.max(override.endsAt, exams[0]!.endsAt));
    expect((await curl(gateway.port, url('game.test'), { from: STUDENT_DEVICE })).status).toBe(403);
    expect((await curl(gateway.port, url('news.test'), { from: OTHER_ROOM })).status).toBe(200);
  }, 90_000);

  it('leaves `lachan check` to the rules alone while an override is open, and `lachan classroom list` shows it', async () => {
    expect((await teacher.act({ do: 'override-start', host: 'game.test', profile: 'hs', minutes: '60', reason: 'Tiết Tin học' })).status).toBe(200);
    expect((await curl(gateway.port, url('game.test'), { from: STUDENT_DEVICE })).status).toBe(200);
    const checked = lachan(['check', '--json', '--profile', 'hs', '--rules', rulesDir, '--data', dataDir, 'http://game.test/']);
    expect(JSON.parse(checked.stdout)).toMatchObject({ action: 'block', category: 'games', reason: 'domain' });
    // IT staff see it with `lachan classroom list`.
    const listed = lachan(['classroom', 'list', '--data', dataDir, '--json']);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout.trim())).toMatchObject({ kind: 'override', host: 'game.test', scope: { profile: 'hs' }, by: 'thaygiao' });
    expect(lachan(['classroom', 'list', '--data', dataDir]).stdout).toContain('mở        game.test cho hồ sơ hs');
  });
});
