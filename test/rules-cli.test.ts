import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { lachan, makeRulesDir, removeDir, SHARED_DATA } from './harness/index.js';

const GOOD_POLICY = `version: 1
default_profile: tieu-hoc
profiles:
  tieu-hoc:
    name: "Tiểu học"
    block_categories: [gambling]
  thpt:
    name: "THPT"
    block_categories: []
clients:
  - cidr: 10.20.0.0/16
    profile: thpt
`;

const dirs: string[] = [];
function rulesDir(files: Record<string, string>): string {
  const dir = makeRulesDir(files);
  dirs.push(dir);
  return dir;
}
afterAll(() => dirs.forEach(removeDir));

describe('lachan rules lint', () => {
  it('accepts the shipped rules folder', () => {
    const result = lachan(['rules', 'lint', '--rules', 'rules']);
    expect(result.stdout.split('\n').filter((l) => /: (?!warning)/.test(l) && !l.includes('warning:'))).toEqual([]);
    expect(result.code).toBe(0);
  });

  it('reports every problem as FILE:LINE: message and exits 1', () => {
    const dir = rulesDir({
      'policy.yaml': `version: 1
default_profile: tieu-hoc
profiles:
  tieu-hoc:
    name: "Tiểu học"
    block_categories: [gambling, casinos]
clients:
  - cidr: 10.20.0.0/33
    profile: tieu-hoc
  - cidr: 10.30.0.0/16
    profile: thpt
`,
      'categories/gambling/domains': 'ok.example\nbad domain.example\nok.example\n',
    });
    const result = lachan(['rules', 'lint', '--rules', dir]);
    expect(result.code).toBe(1);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/policy\.yaml:6: unknown category "casinos"/),
        expect.stringMatching(/policy\.yaml:8: malformed CIDR "10\.20\.0\.0\/33"/),
        expect.stringMatching(/policy\.yaml:11: unknown profile "thpt"/),
        expect.stringMatching(/categories\/gambling\/domains:2: bad domain "bad domain\.example"/),
        expect.stringMatching(/categories\/gambling\/domains:3: warning: duplicate rule "ok\.example" \(first on line 1\)/),
      ]),
    );
    expect(result.stderr).toMatch(/4 lỗi, 1 cảnh báo/);
  });

  it('gives the line of a YAML syntax error', () => {
    const dir = rulesDir({ 'policy.yaml': 'version: 1\nprofiles:\n  a: [unclosed\n' });
    const result = lachan(['rules', 'lint', '--rules', dir]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/policy\.yaml:\d+: YAML: /);
  });
});

describe('lachan check', () => {
  const dir = rulesDir({ 'policy.yaml': GOOD_POLICY, 'categories/gambling/domains': '# list\nbet.example\n' });

  it('prints one JSON object a line, in order, with the fields of docs/contract.md §2', () => {
    const result = lachan(['check', '--profile', 'tieu-hoc', '--rules', dir, '--json', 'http://www.bet.example/x?y=1', 'https://olm.vn/']);
    expect(result.code).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(Object.keys(lines[0])).toEqual(['action', 'profile', 'category', 'reason', 'rule', 'source']);
    expect(lines[0]).toMatchObject({ action: 'block', profile: 'tieu-hoc', category: 'gambling', reason: 'domain', rule: 'bet.example' });
    expect(lines[0].source).toMatch(/categories\/gambling\/domains:2$/);
    expect(lines[1]).toEqual({ action: 'allow', profile: 'tieu-hoc', category: null, reason: 'default', rule: null, source: null });
  });

  it('reads URLs from stdin with -, and resolves the profile from --client', () => {
    const result = lachan(['check', '--client', '10.20.3.4', '--rules', dir, '--json', '-'], 'http://bet.example/\n\nhttp://a.example/\n');
    expect(result.code).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.profile, l.action])).toEqual([
      ['thpt', 'allow'],
      ['thpt', 'allow'],
    ]);
  });

  it('says why in one human line', () => {
    const result = lachan(['check', '--profile', 'tieu-hoc', '--rules', dir, 'bet.example']);
    expect(result.stdout.trim()).toMatch(/^BLOCK\s+bet\.example\s+\[tieu-hoc\] gambling: domain rule "bet\.example" \(.*domains:2\)$/);
  });

  it('exits 2 with one clear line for an unknown profile or a broken rules folder', () => {
    const unknown = lachan(['check', '--profile', 'nope', '--rules', dir, 'http://a.example/']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^lỗi: không có hồ sơ "nope"/);
    expect(unknown.stderr).not.toMatch(/\n\s+at /);
    const broken = rulesDir({ 'policy.yaml': 'version: 1\ndefault_profile: x\nprofiles:\n  x: {block_categories: [nothere]}\n' });
    const result = lachan(['check', '--profile', 'x', '--rules', broken, 'http://a.example/']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/policy\.yaml:4: unknown category "nothere"/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('exits 2 for input that is not a URL, after deciding the others', () => {
    const result = lachan(['check', '--profile', 'tieu-hoc', '--rules', dir, '--json', 'http://a.example/', 'ftp://x/']);
    expect(result.code).toBe(2);
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/không phải URL: ftp:\/\/x\//);
  });
});

describe('lachan rules import', () => {
  it('merges a real hosts list into a category, keeps what was there, and the result lints and decides', () => {
    const dir = rulesDir({ 'policy.yaml': GOOD_POLICY, 'categories/gambling/domains': '# curated\nbet.example\n' });
    const src = `${SHARED_DATA}/hostsvn/extensions/gambling/hosts`;
    const first = lachan(['rules', 'import', '--format', 'hosts', '--category', 'gambling', '--rules', dir, '--json', src]);
    expect(first.code).toBe(0);
    const report = JSON.parse(first.stdout);
    expect(report.addedDomains).toBeGreaterThan(1000);
    const text = readFileSync(`${dir}/categories/gambling/domains`, 'utf8');
    expect(text.startsWith('# curated\nbet.example\n# imported from hosts ')).toBe(true);
    // a second import of the same list adds nothing
    const again = JSON.parse(lachan(['rules', 'import', '--format', 'hosts', '--category', 'gambling', '--rules', dir, '--json', src]).stdout);
    expect(again.addedDomains).toBe(0);
    expect(lachan(['rules', 'lint', '--rules', dir]).code).toBe(0);
    const someHost = text.split('\n')[3]!;
    const decision = JSON.parse(lachan(['check', '--profile', 'tieu-hoc', '--rules', dir, '--json', `http://${someHost}/`]).stdout);
    expect(decision).toMatchObject({ action: 'block', category: 'gambling', rule: someHost });
  });

  it('refuses an unknown format or a missing source with exit 2', () => {
    const dir = rulesDir({ 'policy.yaml': GOOD_POLICY });
    expect(lachan(['rules', 'import', '--format', 'csv', '--category', 'x', '--rules', dir, '/nonexistent']).code).toBe(2);
    const missing = lachan(['rules', 'import', '--format', 'hosts', '--category', 'x', '--rules', dir, '/nonexistent/list']);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
  });
});
