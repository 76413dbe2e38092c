import { mkdirSync, rmdirSync } from 'node:fs';
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
  type Origin,
  readAuditLines,
  readClassroomState,
  type RunningGateway,
  StaffBrowser,
  startClassroomGateway,
  startHostEchoOrigin,
  waitUntil,
} from './harness/index.js';

/**
 * Exam mode and the staff page through a real gateway (docs/classroom.md). A "minute"
 * lasts one second here (the test-only --classroom-minute-ms), so an exam of 6 ends
 * 6 s after it starts.
 */

let origin: Origin;
let gateway: RunningGateway;
let teacher: StaffBrowser;

beforeAll(async () => {
  origin = await startHostEchoOrigin();
  const rulesDir = makeClassroomRules({
    profiles: { hs: { name: 'Học sinh', blockCategories: ['games'] } },
    accounts: { thaygiao: 'giao-vien', hocsinh: 'hs' },
    files: { 'categories/games/domains': 'game.test\n', 'exam-allow': '# learning sites\nolm.test\n' },
  });
  gateway = await startClassroomGateway(rulesDir, '127.0.0.1 game.test olm.test www.olm.test news.test\n');
  teacher = new StaffBrowser(gateway.port, TEACHER_DEVICE);
});

afterAll(async () => {
  await gateway?.stop();
  await origin?.close();
});

const url = (host: string): string => `http://${host}:${origin.port}/`;

describe('the staff page', () => {
  it('is refused to a student device, on the proxy port and through the proxy, and served on the gateway only', async () => {
    const direct = await new StaffBrowser(gateway.port, STUDENT_DEVICE).get();
    expect(direct.status).toBe(403);
    expect(direct.body).toContain('Trang này dành cho thầy cô');
    const proxied = await curl(gateway.port, `http://127.0.0.1:${gateway.port}/__lachan__/lop-hoc`, { from: STUDENT_DEVICE });
    expect(proxied.status).toBe(403);
    expect(proxied.body).toContain('Trang này dành cho thầy cô');
    // Under another site's name it is neither served (its cookie would be that site's) nor forwarded.
    const elsewhere = await curl(gateway.port, `http://news.test:${origin.port}/__lachan__/lop-hoc`, { from: TEACHER_DEVICE });
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.body).not.toContain('origin');
  });

  it('refuses a bad password and a student account, then lets the teacher in', async () => {
    const wrong = await teacher.login('thaygiao', 'sai rồi');
    expect(wrong.status).toBe(401);
    expect(wrong.body).toContain('Sai tên tài khoản hoặc mật khẩu');
    expect(wrong.headers['set-cookie']).toBeUndefined();
    expect((await teacher.login('hocsinh', STAFF_PASSWORD)).status).toBe(401);
    // Without a session, an action is refused even with a plausible form.
    expect((await teacher.act({ do: 'exam-start', room: '127.0.5.0/24', minutes: '5' })).status).toBe(403);
    const right = await teacher.login('thaygiao', STAFF_PASSWORD);
    expect(right.status).toBe(200);
    expect(right.headers['set-cookie']).toMatch(/HttpOnly; SameSite=Strict/);
    expect(right.body).toContain('Bắt đầu giờ kiểm tra');
    expect((await teacher.get()).body).toContain('thaygiao');
  });

  it('throttles repeated logins from one device', async () => {
    const guesser = new StaffBrowser(gateway.port, '127.0.9.20');
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await guesser.login('thaygiao', `đoán ${i}`)).status);
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.at(-1)).toBe(429);
  });

  it('refuses a room wider than a room and a CSRF token that does not match', async () => {
    const wide = await teacher.act({ do: 'exam-start', room: '10.0.0.0/8', minutes: '45' });
    expect(wide.status).toBe(400);
    expect(wide.body).toContain('không phải dải địa chỉ');
    const forged = await teacher.act({ do: 'exam-start', room: '127.0.5.0/24', minutes: '5', csrf: 'x' });
    expect(forged.status).toBe(403);
    expect(readClassroomState(gateway.dataDir).exams).toEqual([]);
  });
});

describe('exam mode', () => {
  it('says so when the state cannot be saved, and changes nothing', async () => {
    // A lock that is never released (a folder where the lock file goes) holds every change back.
    const lock = path.join(gateway.dataDir, 'classroom.lock');
    mkdirSync(lock);
    try {
      const refused = await teacher.act({ do: 'exam-start', room: '127.0.5.0/24', minutes: '8' });
      expect(refused.status).toBe(503);
      expect(refused.body).toContain('chưa lưu được');
    } finally {
      rmdirSync(lock);
    }
    expect(readClassroomState(gateway.dataDir).exams).toEqual([]);
    expect((await curl(gateway.port, url('news.test'), { from: ROOM_DEVICE })).status).toBe(200);
  });

  it('lets a room reach only the exam list, over HTTP and CONNECT, leaving other devices alone, until the teacher ends it', async () => {
    // Long enough that a loaded machine finishes the checks inside it; ended early below.
    expect((await teacher.act({ do: 'exam-start', room: '127.0.5.0/24', minutes: '200' })).status).toBe(200);
    const [exam] = readClassroomState(gateway.dataDir).exams;
    expect(exam?.room).toBe('127.0.5.0/24');

    const blocked = await curl(gateway.port, url('news.test'), { from: ROOM_DEVICE });
    expect(blocked.status).toBe(403);
    expect(blocked.headers['x-lachan-block']).toBe('exam');
    expect(blocked.body).toContain('Đang trong giờ kiểm tra');
    const tunnel = await curl(gateway.port, 'https://news.test:443/', { from: ROOM_DEVICE });
    expect(tunnel.status).toBe(403);
    expect(tunnel.headers['x-lachan-block']).toBe('exam');
    // The exam list opens its subdomains; a device outside the room is unaffected, and the rules still hold for it.
    expect((await curl(gateway.port, url('www.olm.test'), { from: ROOM_DEVICE })).body).toBe(`origin www.olm.test:${origin.port}`);
    expect((await curl(gateway.port, url('news.test'), { from: STUDENT_DEVICE })).status).toBe(200);
    expect((await curl(gateway.port, url('game.test'), { from: STUDENT_DEVICE })).headers['x-lachan-block']).toBe('games');
    expect((await teacher.get()).body).toContain('127.0.5.0/24');

    const ended = await teacher.act({ do: 'end', id: exam!.id });
    expect(ended.body).toContain('Đã kết thúc');
    expect((await curl(gateway.port, url('news.test'), { from: ROOM_DEVICE })).status).toBe(200);
    const end = readAuditLines(gateway.dataDir).find((l) => l.action === 'classroom.exam.end' && l.details.id === exam!.id);
    expect(end?.details).toMatchObject({ by: 'thaygiao', ended: 'early' });
  });

  it('ends by itself at its end time, and the end is audited', async () => {
    expect((await teacher.act({ do: 'exam-start', room: '127.0.5.0/24', minutes: '6' })).status).toBe(200);
    const [exam] = readClassroomState(gateway.dataDir).exams;
    expect((await curl(gateway.port, url('news.test'), { from: ROOM_DEVICE })).headers['x-lachan-block']).toBe('exam');

    await waitUntil(exam!.endsAt);
    expect((await curl(gateway.port, url('news.test'), { from: ROOM_DEVICE })).status).toBe(200);
    // The end is audited once the gateway has tidied its state (a one-second sweep).
    await auditLineUntil(gateway.dataDir, (l) => l.action === 'classroom.exam.end' && l.details.id === exam!.id);
    const audit = readAuditLines(gateway.dataDir).filter((l) => l.details.id === exam!.id);
    expect(audit.map((l) => l.action)).toEqual(['classroom.exam.start', 'classroom.exam.end']);
    expect(audit[0]!.details.by).toBe('thaygiao');
    expect(audit[1]!.details.ended).toBe('time');
    expect(readClassroomState(gateway.dataDir).exams).toEqual([]);
  });
});
