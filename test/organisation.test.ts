import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_ORGANISATION, reportingPeriod } from '../src/rules/organisation.js';
import { lachan, makeRulesDir, removeDir } from './harness/index.js';

const PROFILES = 'profiles:\n  tieu-hoc:\n    name: "Tiểu học"\n    block_categories: []\n';
const dirs: string[] = [];
function rules(policy: string): string {
  const dir = makeRulesDir({ 'policy.yaml': policy });
  dirs.push(dir);
  return dir;
}

afterAll(() => dirs.forEach(removeDir));

describe('the organisation section of policy.yaml', () => {
  it('lints a well-formed section clean', () => {
    const dir = rules(
      `version: 1\ndefault_profile: tieu-hoc\norganisation:\n  school: "TH Kim Đồng"\n  office:\n    name: "Sở GD&ĐT Lào Cai"\n    level: tinh\n  hotline:\n    number: "0214 3840 111"\n    label: "Đường dây nóng Lào Cai"\n${PROFILES}`,
    );
    const result = lachan(['rules', 'lint', '--rules', dir]);
    expect(result.stdout + result.stderr).not.toContain('organisation');
    expect(result.code).toBe(0);
  });

  it('reports each mistake as FILE:LINE, and lint fails', () => {
    const dir = rules(
      'version: 1\ndefault_profile: tieu-hoc\norganisation:\n  office:\n    level: huyện\n  hotline:\n    number: "gọi ngay"\n    label: ""\n  report:\n    period_start: "30/02"\n  hotlines: []\n' +
        PROFILES,
    );
    const result = lachan(['rules', 'lint', '--rules', dir]);
    expect(result.code).toBe(1);
    const out = result.stdout + result.stderr;
    expect(out).toMatch(/policy\.yaml:5: organisation\.office\.level must be tinh, xa or huyen/);
    expect(out).toMatch(/policy\.yaml:7: organisation\.hotline\.number must be the digits to dial/);
    expect(out).toMatch(/policy\.yaml:8: organisation\.hotline\.label must not be empty/);
    expect(out).toMatch(/policy\.yaml:10: organisation\.report\.period_start must be a day and month/);
    expect(out).toMatch(/policy\.yaml:11: warning: unknown field "organisation\.hotlines"/);
  });
});

describe('the reporting year', () => {
  it('is the calendar year by default, and runs to the day before period_start otherwise', () => {
    expect(reportingPeriod(DEFAULT_ORGANISATION, 2026)).toEqual({ fromDay: '2026-01-01', toDay: '2026-12-31' });
    const november = { ...DEFAULT_ORGANISATION, report: { ...DEFAULT_ORGANISATION.report, periodStart: [11, 1] as const } };
    expect(reportingPeriod(november, 2026)).toEqual({ fromDay: '2025-11-01', toDay: '2026-10-31' });
    const march = { ...DEFAULT_ORGANISATION, report: { ...DEFAULT_ORGANISATION.report, periodStart: [3, 1] as const } };
    expect(reportingPeriod(march, 2028)).toEqual({ fromDay: '2027-03-01', toDay: '2028-02-29' });
  });
});
