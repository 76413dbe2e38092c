import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicy, loadRules } from '../src/rules/loader.js';
import type { Policy } from '../src/policy/engine.js';
import { minuteOfWeek, parseVietnamTime } from '../src/policy/schedules.js';
import { curl, lachan, makeRulesDir, type Origin, removeDir, type RunningGateway, startGateway, startHttpOrigin, writeRulesFiles } from './harness/index.js';

// Lines matter: the validation tests below expect errors at these lines.
const POLICY = `version: 1
default_profile: thpt
profiles:
  thpt:
    name: "THPT"
    block_categories: [adult, social-networks]
    schedules:
      - name: "Nghỉ trưa"
        days: [mon, tue, wed, thu, fri]
        from: "11:30"
        to: "13:30"
        block_categories: [adult]
  giao-vien:
    name: "Giáo viên"
    block_categories: [adult, social-networks]
    schedules:
      - name: "Cuối tuần"
        days: [sat, sun]
        from: "00:00"
        to: "24:00"
        block_categories: []
      - name: "Đầu tuần sớm"
        days: [mon]
        from: "00:00"
        to: "07:00"
        block_categories: [social-networks]
  khong-lich:
    name: "Không lịch"
    block_categories: [social-networks]
`;

const FILES = {
  'policy.yaml': POLICY,
  'categories/adult/domains': 'adult.example\n',
  'categories/social-networks/domains': 'facebook.com\ntiktok.com\n',
};

/** ms since the epoch of a Vietnam wall-clock time, with seconds and ms. */
function vn(text: string, seconds = 0, ms = 0): number {
  const at = parseVietnamTime(text);
  if (at === null) throw new Error(`bad time ${text}`);
  return at + seconds * 1000 + ms;
}

let dir: string;
let policy: Policy;
beforeAll(async () => {
  dir = makeRulesDir(FILES);
  policy = await loadPolicy(dir);
});
afterAll(() => removeDir(dir));

describe('Vietnam time arithmetic', () => {
  it('counts minutes of the week from Monday 00:00 in UTC+7', () => {
    // 2026-12-07 is a Monday; 00:00 there is 2026-12-06 17:00 UTC.
    expect(minuteOfWeek(Date.UTC(2026, 11, 6, 17, 0))).toBe(0);
    expect(minuteOfWeek(Date.UTC(2026, 11, 6, 16, 59, 59, 999))).toBe(7 * 1440 - 1);
    expect(minuteOfWeek(vn('2026-12-07 12:15'))).toBe(12 * 60 + 15);
    expect(minuteOfWeek(vn('2026-12-13 23:59'))).toBe(7 * 1440 - 1);
    // Before the epoch too (1969-12-29 was a Monday).
    expect(minuteOfWeek(Date.UTC(1969, 11, 28, 17, 0))).toBe(0);
  });

  it('reads only real dates and times', () => {
    expect(parseVietnamTime('2026-12-07 12:15')).toBe(Date.UTC(2026, 11, 7, 5, 15));
    expect(parseVietnamTime('2026-02-30 10:00')).toBeNull();
    expect(parseVietnamTime('2026-12-07 24:00')).toBeNull();
    expect(parseVietnamTime('7/12/2026 12:15')).toBeNull();
  });
});

describe('decisions change at a schedule boundary without a reload', () => {
  it('a cached block turns into an allow at 11:30:00 and back at 13:30:00', () => {
    const at = (t: number) => policy.decide('thpt', 'facebook.com', '/', t).action;
    expect(at(vn('2026-12-07 11:29', 59, 999))).toBe('block');
    // The same host again: a cache keyed by the profile alone would answer "block".
    expect(at(vn('2026-12-07 11:30'))).toBe('allow');
    expect(policy.scheduleAt('thpt', vn('2026-12-07 11:30'))).toBe('Nghỉ trưa');
    expect(at(vn('2026-12-07 13:29', 59, 999))).toBe('allow');
    expect(at(vn('2026-12-07 13:30'))).toBe('block');
    expect(policy.scheduleAt('thpt', vn('2026-12-07 13:30'))).toBeNull();
    // Saturday is not in the schedule's days.
    expect(at(vn('2026-12-12 12:00'))).toBe('block');
    // What the schedule keeps blocked stays blocked inside it.
    expect(policy.decide('thpt', 'adult.example', '/', vn('2026-12-07 12:00')).action).toBe('block');
    expect(policy.cacheStats().hits).toBeGreaterThan(0);
  });

  it('wraps from Sunday night to Monday morning', () => {
    const at = (t: number) => policy.decide('giao-vien', 'facebook.com', '/', t);
    expect(at(vn('2026-12-13 23:59', 59, 999)).action).toBe('allow');
    expect(policy.scheduleAt('giao-vien', vn('2026-12-13 23:59'))).toBe('Cuối tuần');
    expect(at(vn('2026-12-14 00:00')).action).toBe('block');
    expect(policy.scheduleAt('giao-vien', vn('2026-12-14 00:00'))).toBe('Đầu tuần sớm');
    // Inside "Đầu tuần sớm" adult is not blocked; outside, the profile's list is back.
    expect(policy.decide('giao-vien', 'adult.example', '/', vn('2026-12-14 06:59')).action).toBe('allow');
    expect(policy.decide('giao-vien', 'adult.example', '/', vn('2026-12-14 07:00')).action).toBe('block');
    expect(policy.decide('giao-vien', 'adult.example', '/', vn('2026-12-13 07:00')).action).toBe('allow');
    expect(policy.scheduleAt('giao-vien', vn('2026-12-14 07:00'))).toBeNull();
  });

  it('decides the same cached and uncached, CONNECT included', async () => {
    const uncached = await loadPolicy(dir, { cacheSize: 0 });
    for (const time of ['2026-12-07 11:29', '2026-12-07 11:30', '2026-12-11 13:29', '2026-12-13 23:59', '2026-12-14 00:00']) {
      for (const profile of ['thpt', 'giao-vien', 'khong-lich']) {
        for (const host of ['facebook.com', 'adult.example', 'olm.vn']) {
          expect(policy.decideConnect(profile, host, 443, vn(time))).toEqual(uncached.decide(profile, host, '/', vn(time)));
        }
      }
    }
  });

  it('leaves a profile without schedules as it was at any time', () => {
    expect(policy.decide('khong-lich', 'facebook.com', '/', vn('2026-12-07 12:00')).action).toBe('block');
    expect(policy.decide('khong-lich', 'facebook.com', '/').action).toBe('block');
    expect(policy.scheduleAt('khong-lich', vn('2026-12-07 12:00'))).toBeNull();
  });
});

describe('schedules are validated at load', () => {
  const broken = (schedule: string) =>
    POLICY.replace(
      `      - name: "Nghỉ trưa"
        days: [mon, tue, wed, thu, fri]
        from: "11:30"
        to: "13:30"
        block_categories: [adult]
`,
      schedule,
    );

  async function errorsOf(policyText: string): Promise<string[]> {
    const bad = makeRulesDir({ ...FILES, 'policy.yaml': policyText });
    try {
      const result = await loadRules(bad);
      expect(result.policy).toBeNull();
      return result.problems.filter((p) => p.severity === 'error').map((p) => `${p.line}: ${p.message}`);
    } finally {
      removeDir(bad);
    }
  }

  it('refuses a bad day, a bad time, to ≤ from, an unknown category and overlapping windows, each at its line', async () => {
    expect(
      await errorsOf(
        broken(`      - name: "Nghỉ trưa"
        days: [mon, thurs]
        from: "11:30"
        to: "13:30"
        block_categories: [adult]
`),
      ),
    ).toEqual([expect.stringMatching(/^9: .*"thurs" is not a day/)]);
    expect(
      await errorsOf(
        broken(`      - name: "Nghỉ trưa"
        days: [mon]
        from: "11h30"
        to: "25:00"
        block_categories: [adult]
`),
      ),
    ).toEqual([expect.stringMatching(/^10: .*"from" must be a time HH:MM/), expect.stringMatching(/^11: .*"to" must be a time HH:MM/)]);
    expect(
      await errorsOf(
        broken(`      - name: "Nghỉ trưa"
        days: [mon]
        from: "13:30"
        to: "11:30"
        block_categories: [adult]
`),
      ),
    ).toEqual([expect.stringMatching(/^11: .*"to" \(11:30\) must be later than "from" \(13:30\)/)]);
    expect(
      await errorsOf(
        broken(`      - name: "Nghỉ trưa"
        days: [mon]
        from: "11:30"
        to: "12:30"
        block_categories: [adult, poker]
`),
      ),
    ).toEqual([expect.stringMatching(/^12: unknown category "poker"/)]);
    expect(
      await errorsOf(
        broken(`      - name: "Nghỉ trưa"
        days: [mon, tue]
        from: "11:30"
        to: "13:30"
        block_categories: [adult]
      - name: "Chiều"
        days: [tue]
        from: "13:00"
        to: "17:00"
        block_categories: []
`),
      ),
    ).toEqual([expect.stringMatching(/^13: schedule "Chiều" overlaps schedule "Nghỉ trưa" \(line 8\) on tue/)]);
  });

  it('lachan rules lint prints FILE:LINE and exits 1', () => {
    const bad = makeRulesDir({
      ...FILES,
      'policy.yaml': broken(`      - name: "Nghỉ trưa"
        days: [monday]
        from: "11:30"
        to: "13:30"
        block_categories: [adult]
`),
    });
    try {
      const result = lachan(['rules', 'lint', '--rules', bad]);
      expect(result.code).toBe(1);
      expect(result.stdout + result.stderr).toMatch(/policy\.yaml:9: .*"monday" is not a day/);
    } finally {
      removeDir(bad);
    }
  });
});

describe('lachan check --at', () => {
  it('decides at a Vietnam time and names the schedule in force', () => {
    const lunch = lachan(['check', '--rules', dir, '--profile', 'thpt', '--at', '2026-12-07 12:15', '--json', 'https://facebook.com/']);
    expect(lunch.code).toBe(0);
    expect(JSON.parse(lunch.stdout)).toMatchObject({ action: 'allow', profile: 'thpt', schedule: 'Nghỉ trưa' });
    const text = lachan(['check', '--rules', dir, '--profile', 'thpt', '--at', '2026-12-07 12:15', 'https://facebook.com/']);
    expect(text.stdout).toContain('lịch "Nghỉ trưa"');
    const afternoon = lachan(['check', '--rules', dir, '--profile', 'thpt', '--at', '2026-12-07 13:30', '--json', 'https://facebook.com/']);
    const decision = JSON.parse(afternoon.stdout) as Record<string, unknown>;
    expect(decision).toMatchObject({ action: 'block', category: 'social-networks' });
    expect(decision).not.toHaveProperty('schedule');
  });

  it('refuses a time it cannot read with exit 2', () => {
    const result = lachan(['check', '--rules', dir, '--profile', 'thpt', '--at', '12:15 hôm nay', 'https://facebook.com/']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('YYYY-MM-DD HH:MM');
  });
});

/**
 * A rules folder whose one profile blocks social networks except inside one window of
 * every day, where it blocks `blocked` instead.
 */
function socialRules(window: { name: string; from: string; to: string; blocked: string }) {
  return {
    ...FILES,
    'policy.yaml': `version: 1
default_profile: p
profiles:
  p:
    name: "P"
    block_categories: [social-networks]
    block_ip_literals: false
    schedules:
      - name: "${window.name}"
        days: [mon, tue, wed, thu, fri, sat, sun]
        from: "${window.from}"
        to: "${window.to}"
        block_categories: [${window.blocked}]
`,
    'categories/social-networks/domains': 'social.test\n',
  };
}

describe('the proxy decides with the schedule in force now', () => {
  let origin: Origin;
  let proxy: RunningGateway;
  // A window over the whole week, so that "now" is always inside it whatever the test box's clock says.
  const allWeek = (blocked: string) => socialRules({ name: 'Cả tuần', from: '00:00', to: '24:00', blocked });

  beforeAll(async () => {
    origin = await startHttpOrigin((_req, res) => res.end('trang mạng xã hội'));
    proxy = await startGateway({ rules: allWeek(''), hosts: '127.0.0.1 social.test\n' });
  });
  afterAll(async () => {
    await proxy?.stop();
    await origin?.close();
  });

  it('allows what the profile blocks while its schedule is in force, and keeps the old policy when a schedule is broken', async () => {
    const url = `http://social.test:${origin.port}/`;
    const open = await curl(proxy.port, url);
    expect(open.status).toBe(200);
    expect(open.body).toBe('trang mạng xã hội');

    const refusals = () => proxy.logs.filter((l) => String(l.msg).startsWith('rules reload refused')).length;
    const files = allWeek('');
    writeRulesFiles(proxy.rulesDir, { 'policy.yaml': files['policy.yaml'].replace('to: "24:00"', 'to: "00:00"') });
    proxy.child.kill('SIGHUP');
    const refused = await proxy.waitForLog(() => refusals() > 0);
    expect(JSON.stringify(refused.problems)).toMatch(/policy\.yaml:12: .*must be later than/);
    expect((await curl(proxy.port, url)).status).toBe(200);

    const reloads = () => proxy.logs.filter((l) => l.msg === 'rules reloaded').length;
    const before = reloads();
    writeRulesFiles(proxy.rulesDir, { 'policy.yaml': allWeek('social-networks')['policy.yaml'] });
    proxy.child.kill('SIGHUP');
    await proxy.waitForLog(() => reloads() > before);
    expect((await curl(proxy.port, url)).status).toBe(403);
  });
});

describe('the proxy crosses a schedule boundary on its own clock', () => {
  let origin: Origin;
  let proxy: RunningGateway;
  /** Vietnam time (UTC+7) as HH:MM, `minutesAhead` whole minutes after the current one. */
  const vietnamMinute = (minutesAhead: number): { text: string; at: number } => {
    const at = (Math.floor(Date.now() / 60_000) + minutesAhead) * 60_000;
    const local = new Date(at + 7 * 3_600_000);
    return { text: `${String(local.getUTCHours()).padStart(2, '0')}:${String(local.getUTCMinutes()).padStart(2, '0')}`, at };
  };
  let opens: { text: string; at: number };
  let closes: { text: string; at: number };

  beforeAll(async () => {
    // Chosen as the gateway starts, not when the file loads (the tests above may take
    // a minute on a busy box): the window opens at least 40 s from now, at a whole
    // minute, and lasts one minute.
    const lead = new Date().getUTCSeconds() < 20 ? 1 : 2;
    opens = vietnamMinute(lead);
    closes = vietnamMinute(lead + 1);
    origin = await startHttpOrigin((_req, res) => res.end('trang mạng xã hội'));
    proxy = await startGateway({
      rules: socialRules({ name: 'Một phút', from: opens.text, to: closes.text, blocked: '' }),
      hosts: '127.0.0.1 social.test\n',
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await origin?.close();
  });

  /** Asks every 200 ms until the answer is `status`; when it came. */
  async function statusTurns(url: string, status: number, deadline: number): Promise<number> {
    for (;;) {
      const answer = await curl(proxy.port, url);
      if (answer.status === status) return Date.now();
      if (Date.now() > deadline) throw new Error(`still ${answer.status}, not ${status}, at ${new Date().toISOString()}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  it('opens the site at the minute the window starts and blocks it again at the minute it ends, with no reload and the cache warm', async (context) => {
    // A window cannot run past midnight: at 23:58 Vietnam time there is no minute to test.
    if (closes.text === '00:00') context.skip();
    expect(Date.now()).toBeLessThan(opens.at);
    const url = `http://social.test:${origin.port}/`;
    // Asked before the window, again and again: the decision cache holds the block.
    expect((await curl(proxy.port, url)).status).toBe(403);
    const opened = await statusTurns(url, 200, opens.at + 15_000);
    expect(opened).toBeGreaterThanOrEqual(opens.at);
    const closed = await statusTurns(url, 403, closes.at + 15_000);
    expect(closed).toBeGreaterThanOrEqual(closes.at);
    expect(proxy.logs.filter((l) => l.msg === 'rules reloaded')).toEqual([]);
  }, 200_000);
});
