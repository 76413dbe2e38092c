import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { DomainSetBuilder } from '../src/policy/domains.js';
import { CATEGORY_BLOCKS, CATEGORY_ALLOWS } from '../src/policy/types.js';
import { lachan, makeRulesDir, removeDir } from './harness/index.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

/** Long lists are read in pieces of about a megabyte; these lines sit across the piece boundaries. */
function bigList(): { text: string; marks: Map<string, number> } {
  const lines: string[] = ['\ufeff# a list saved with a byte-order mark, CRLF line ends and non-ASCII names'];
  const marks = new Map<string, number>();
  let bytes = 0;
  for (let i = 0; lines.length < 150_000; i++) {
    let line = `filler${i}.example`;
    // Every 45,000 lines (≈ 1 MB), a name that needs the slow path.
    if (i % 45_000 === 44_999) line = `Bücher${i}.Example`;
    if (i % 40_000 === 39_999) line = `  mark${i}.example  `;
    lines.push(line);
    bytes += line.length + 2;
    if (line.includes('mark') || line.includes('Bücher')) marks.set(line.trim(), lines.length);
  }
  expect(bytes).toBeGreaterThan(3 * 1024 * 1024);
  return { text: `${lines.join('\r\n')}\r\n`, marks };
}

describe('long domain lists', () => {
  const { text, marks } = bigList();
  const policy = 'version: 1\ndefault_profile: p\nprofiles:\n  p:\n    name: "P"\n    block_categories: [big]\n';

  it.each([
    ['a category file', 'categories/big/domains', (dir: string) => writeFileSync(path.join(dir, 'categories/big/domains'), text)],
    [
      'a gzip bundled list',
      'bundled/big.domains.gz',
      (dir: string) => {
        mkdirSync(path.join(dir, 'bundled'));
        writeFileSync(path.join(dir, 'bundled/lists'), 'big.domains.gz big\n');
        writeFileSync(path.join(dir, 'bundled/big.domains.gz'), gzipSync(text));
      },
    ],
  ])(
    'keep every line number of %s read in pieces, across piece boundaries',
    (_kind, file, write) => {
      const dir = makeRulesDir({ 'policy.yaml': policy, 'categories/big/keywords': '' });
      dirs.push(dir);
      write(dir);
      const hosts = [...marks.keys()];
      const result = lachan(['check', '--profile', 'p', '--rules', dir, '--json', ...hosts.map((h) => `http://www.${h.toLowerCase()}/`)]);
      expect(result.stderr).toBe('');
      const sources = result.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { source: string }).source);
      expect(sources).toEqual(hosts.map((h) => expect.stringMatching(new RegExp(`${file.replace('.', '\\.')}:${marks.get(h)}$`))));
      expect(hosts.filter((h) => h.startsWith('Bücher')).length).toBeGreaterThanOrEqual(3);
    },
    120_000,
  );
});

describe('rules for one name in several places', () => {
  it('name the rule written first, and an allow over any block, however the set was sorted', () => {
    const builder = new DomainSetBuilder();
    // Enough names that the in-place sort moves records around.
    for (let i = 0; i < 100_000; i++) builder.add(`n${i}.example`, 0, 3, i + 1);
    builder.add('twice.example', 0, 2, 7);
    builder.add('twice.example', 0, 1, 9);
    builder.add('twice.example', 0, 0, 4); // the profile's own list (policy.yaml) comes after category files
    builder.add('both.example', 0, 1, 1);
    builder.add('both.example', 1, 2, 2);
    const set = builder.build();
    const actions = Uint8Array.of(CATEGORY_BLOCKS, CATEGORY_ALLOWS);
    const twice = set.lookup('www.twice.example', actions)!;
    expect([set.fileOf(twice.entry), set.lineOf(twice.entry)]).toEqual([1, 9]);
    const both = set.lookup('both.example', actions)!;
    expect(set.categoryOf(both.entry)).toBe(1);
    for (let i = 0; i < 100_000; i += 997) expect(set.lineOf(set.lookup(`n${i}.example`, actions)!.entry)).toBe(i + 1);
  });
});
