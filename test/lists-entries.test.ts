import { describe, expect, it } from 'vitest';
import { applyDelta, checkNotShrunk, diffVersions, type ListRefusal, listVersionOf, parseDownload } from '../src/lists/entries.js';
import { parseListsFile, parseRefresh } from '../src/lists/config.js';
import { ProblemList } from '../src/rules/problems.js';

describe('list versions', () => {
  it('names the same entries the same way whatever their order and repeats', () => {
    const a = parseDownload('hosts', '0.0.0.0 b.vn\n0.0.0.0 a.vn\n0.0.0.0 A.VN.\n');
    const b = parseDownload('domains', 'a.vn\nb.vn\n');
    expect(a.version).toBe(b.version);
    expect(a.text).toBe('a.vn\nb.vn\n');
    expect(a.entries).toBe(2);
  });

  it('takes a UT1 file of domains and URL rules, and adblock host and path rules', () => {
    expect(parseDownload('ut1', 'casino.fr\nwww.jeux.fr/poker\n').text).toBe('casino.fr\njeux.fr/poker\n');
    expect(parseDownload('adblock', '! comment\n||bet.vn^\n||x.vn/cuoc^\n##.ad\n').text).toBe('bet.vn\nx.vn/cuoc\n');
  });

  it('refuses a download that is not a list of the format', () => {
    const refusal = (format: 'hosts' | 'domains', body: string) => {
      try {
        parseDownload(format, body);
      } catch (error) {
        return (error as ListRefusal).code;
      }
      return null;
    };
    expect(refusal('hosts', '<!DOCTYPE html>\n<html><body>502 Bad Gateway</body></html>\n')).toBe('LACHAN_LIST_UNPARSEABLE');
    expect(refusal('domains', '')).toBe('LACHAN_LIST_UNPARSEABLE');
    // A few bad lines in a real list are skipped, not a reason to refuse it.
    expect(refusal('domains', 'a.vn\nb.vn\nc.vn\nnot a host\n')).toBeNull();
    expect(refusal('domains', 'a.vn\nnot a host\nnor this\n')).toBe('LACHAN_LIST_UNPARSEABLE');
  });

  it('refuses a version with less than half the entries of the last good one', () => {
    const half = listVersionOf(['a.vn', 'b.vn']);
    expect(() => checkNotShrunk(half, { entries: 4 })).not.toThrow();
    expect(() => checkNotShrunk(half, { entries: 5 })).toThrow(/ít hơn một nửa/);
    expect(() => checkNotShrunk(half, null)).not.toThrow();
  });

  it('rebuilds a version from its base and the delta, and refuses a delta for another base', () => {
    const base = listVersionOf(['a.vn', 'b.vn', 'c.vn']);
    const next = listVersionOf(['b.vn', 'c.vn', 'd.vn', 'e.vn/x']);
    const delta = diffVersions(base.text, next.text);
    expect(delta).toBe('-a.vn\n+d.vn\n+e.vn/x\n');
    expect(applyDelta(base.text, delta)).toEqual(next);
    expect(diffVersions(next.text, next.text)).toBe('');
    expect(() => applyDelta(listVersionOf(['z.vn']).text, delta)).toThrow(/không có trong phiên bản/);
  });
});

describe('lists.yaml', () => {
  it('reads subscriptions and reports each problem with its line', () => {
    const problems = new ProblemList();
    const lists = parseListsFile(
      'lists:\n  - name: a\n    category: gambling\n    url: https://x.vn/a\n    format: hosts\n    refresh: 12h\n  - name: a\n    category: gambling\n    url: https://x.vn/b\n    format: csv\n    refresh: soon\n',
      'lists.yaml',
      problems,
    );
    expect(lists).toEqual([expect.objectContaining({ name: 'a', refreshMs: 12 * 3_600_000, line: 2 })]);
    expect(problems.items.map((p) => `${p.line}: ${p.message}`)).toEqual([
      '7: list name "a" is used twice (first on line 2)',
      '10: format "csv": one of hosts, domains, adblock, ut1',
      '11: refresh "soon": a number and a unit, e.g. 30m, 12h, 1d, 7d',
    ]);
    expect(parseRefresh('7d')).toBe(7 * 86_400_000);
    expect(parseRefresh('0m')).toBeNull();
  });
});
