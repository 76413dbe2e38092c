import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lachan, makeRulesDir, removeDir } from './harness/index.js';

// A test school's real configuration: two profiles, one with a lunch-break schedule.
const rulesDir = makeRulesDir({
  'policy.yaml': `version: 1
default_profile: thcs
profiles:
  thcs:
    name: "Trung học cơ sở"
    block_categories: [adult, gambling, social-networks]
    inspect: true
    schedules:
      - name: "Nghỉ trưa"
        days: [mon, tue, wed, thu, fri]
        from: "11:30"
        to: "13:30"
        block_categories: [adult, gambling]
  giao-vien:
    name: "Giáo viên"
    block_categories: [adult]
clients:
  - cidr: 10.20.0.0/20
    profile: thcs
  - cidr: 10.99.0.0/24
    profile: giao-vien
organisation:
  school: "Trường THCS Nguyễn Du"
  office:
    name: "Sở Giáo dục và Đào tạo tỉnh Lào Cai"
    level: tinh
  hotline:
    number: "0214 3840 111"
    label: "Đường dây nóng bảo vệ trẻ em tỉnh Lào Cai"
`,
  'categories/adult/domains': 'adult.example\n',
  'categories/gambling/domains': 'bet.example\n',
  'categories/social-networks/domains': 'facebook.com\n',
});
afterAll(() => removeDir(rulesDir));

describe('lachan privacy dpia', () => {
  it('drafts the assessment from the school’s configuration, nothing leaving the school without --central', () => {
    const result = lachan(['privacy', 'dpia', '--rules', rulesDir]);
    expect(result.code).toBe(0);
    const text = result.stdout;
    expect(text).toContain('# Hồ sơ đánh giá tác động xử lý dữ liệu cá nhân');
    expect(text).toContain('Trường THCS Nguyễn Du');
    expect(text).toContain('Sở Giáo dục và Đào tạo tỉnh Lào Cai');
    expect(text).toMatch(
      /\| Trung học cơ sở \(`thcs`\) \| adult, gambling, social-networks \| có \| Nghỉ trưa: T2, T3, T4, T5, T6 11:30–13:30, chặn adult, gambling \|/,
    );
    expect(text).toMatch(/\| Giáo viên \(`giao-vien`\) \| adult \| không \| — \|/);
    expect(text).toContain('2 dải trong mục `clients`');
    // Retention, from src/privacy/retention.ts.
    expect(text).toMatch(/events\.db\) \| .* \| 30 ngày/);
    expect(text).toMatch(/device-trust\.json\) \| .* \| 90 ngày/);
    expect(text).toContain('**không** gửi dữ liệu ra khỏi trường');
    expect(text).toContain('91/2025/QH15');
    expect(text).toContain('0214 3840 111');
  });

  it('names the collector and its retention when events leave the school, and writes HTML', () => {
    const out = path.join(rulesDir, 'dpia.html');
    const result = lachan([
      'privacy',
      'dpia',
      '--rules',
      rulesDir,
      '--central',
      'https://thongke.sogd.example/lachan',
      '--retention-days',
      '365',
      '--out',
      out,
    ]);
    expect(result.code).toBe(0);
    const html = readFileSync(out, 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<h1>Hồ sơ đánh giá tác động xử lý dữ liệu cá nhân (bản nháp)</h1>');
    expect(html).toContain('<code>https://thongke.sogd.example/lachan</code>');
    expect(html).toContain('365 ngày');
    expect(html).toContain('<p><strong>Bên kiểm soát và xử lý dữ liệu:</strong> Trường THCS Nguyễn Du</p>');
    expect(html).toContain('<td>Trung học cơ sở (<code>thcs</code>)</td>');
  });

  it('refuses a policy with errors, naming the line', () => {
    const broken = makeRulesDir({
      'policy.yaml':
        'version: 1\ndefault_profile: x\nprofiles:\n  x:\n    name: "X"\n    schedules:\n      - name: "A"\n        days: [funday]\n        from: "08:00"\n        to: "09:00"\n        block_categories: []\n',
    });
    try {
      const result = lachan(['privacy', 'dpia', '--rules', broken]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/policy\.yaml:8: .*"funday" is not a day/);
    } finally {
      removeDir(broken);
    }
  });
});
