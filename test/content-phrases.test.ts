/**
 * Phrases files and content_limit in the rules folder (docs/contract.md §8): broken
 * lines are refused as FILE:LINE by `lachan rules lint`, and the compiled scanner
 * carries its state across pieces of text cut anywhere.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { PhraseSetBuilder } from '../src/policy/phrases.js';
import { FoldedText } from '../src/policy/text.js';
import { lachan, makePhrasesRulesDir, removeDir } from './harness/index.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

describe('lachan rules lint on phrases', () => {
  it('reports every broken phrases line as FILE:LINE and exits 1', () => {
    // One phrase a line, so the line numbers below can be read off.
    const dir = makePhrasesRulesDir(`# comment
40 nhà cái
nhà cái uy tín
0 soi kèo
5000 lô đề
30 ab
30 *ab*
30 lo*de
-20 công an
`);
    dirs.push(dir);
    const result = lachan(['rules', 'lint', '--rules', dir]);
    expect(result.code).toBe(1);
    const file = `${dir}/categories/gambling/phrases`;
    const lines = result.stdout
      .split('\n')
      .filter((l) => l.startsWith(file))
      .map((l) => l.slice(file.length));
    expect(lines).toEqual([
      expect.stringMatching(/^:3: expected "<weight> <phrase>"/),
      expect.stringMatching(/^:4: weight must be a non-zero integer/),
      expect.stringMatching(/^:5: weight must be a non-zero integer/),
      expect.stringMatching(/^:6: phrase "ab": a one-word keyword needs at least 3 letters/),
      expect.stringMatching(/^:7: phrase "\*ab\*": a keyword with '\*' needs at least 4/),
      expect.stringMatching(/^:8: phrase "lo\*de": '\*' is allowed only at the start or the end/),
    ]);
  });

  it('refuses a content_limit that is not a whole number above 0, at its line', () => {
    const dir = makePhrasesRulesDir('40 nhà cái\n', { young: { name: 'Tiểu học', contentLimit: 'nhiều' } });
    dirs.push(dir);
    const result = lachan(['rules', 'lint', '--rules', dir]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/policy\.yaml:7: content_limit must be a whole number above 0/);
  });

  it('accepts a clean folder', () => {
    const dir = makePhrasesRulesDir('40 nhà cái\n-20 công an\n30 *nhacai*\n');
    dirs.push(dir);
    expect(lachan(['rules', 'lint', '--rules', dir]).code).toBe(0);
  });
});

describe('phrase scanner', () => {
  const builder = new PhraseSetBuilder();
  const LINES = [
    ['50 cá độ bóng đá', 0],
    ['30 nhà cái', 0],
    ['-20 công an', 0],
    ['70 phim sex', 1],
    ['25 *nhacai*', 0],
  ] as const;
  for (const [line, category] of LINES) expect(builder.addLine(line, category, 1, 1)).toBeNull();
  const phrases = builder.build();

  function scoreInPieces(text: string, cuts: readonly number[]): number[] {
    const scanner = phrases.scanner(2);
    let from = 0;
    for (const cut of [...cuts, text.length]) {
      scanner.append(text, from, cut);
      from = cut;
    }
    scanner.finish();
    return [...scanner.scores];
  }

  it('scores the same whatever the text is cut into, NFC or NFD', () => {
    for (const text of [
      'Công an: trang cá độ bóng đá của nhà cái, xem phim sex ở nhacaivip',
      'Công an: trang cá độ bóng đá của nhà cái, xem phim sex ở nhacaivip'.normalize('NFD'),
    ]) {
      const whole = scoreInPieces(text, []);
      expect(whole).toEqual([50 + 30 - 20 + 25, 70]);
      for (let a = 0; a <= text.length; a++) expect(scoreInPieces(text, [a])).toEqual(whole);
      for (let a = 0; a < text.length; a += 3) for (let b = a; b <= text.length; b += 5) expect(scoreInPieces(text, [a, b])).toEqual(whole);
    }
  });

  it('counts a phrase once however often it occurs, and reports it with its weight', () => {
    const scanner = phrases.scanner(2);
    scanner.append('nhà cái, nhà cái, NHA CAI');
    scanner.finish();
    expect([...scanner.scores]).toEqual([30, 0]);
    expect(scanner.evidence(0)).toEqual(['nhà cái (30)']);
  });

  it('scores the same with the 16-bit table as with the dense one a large phrase list gets', () => {
    // Thousands of made-up words in a third category push the automaton past what
    // 16-bit rows hold, so this set scans with the dense table; the small set above
    // with the compact one. Categories 0 and 1 must score alike, phrase by phrase.
    const large = new PhraseSetBuilder();
    for (const [line, category] of LINES) expect(large.addLine(line, category, 1, 1)).toBeNull();
    const letters = 'bcdfghklmnpqrstvx';
    for (let i = 0; i < 4000; i++) {
      let word = '';
      for (let n = i + 17 * 17; n > 0; n = Math.floor(n / letters.length)) word += letters[n % letters.length];
      expect(large.addLine(`5 zq${word}`, 2, 2, i + 1)).toBeNull();
    }
    const denseSet = large.build();
    // The comparison is between the two tables only while each set has the one said above.
    expect(phrases.automaton.scansCompactRows).toBe(true);
    expect(denseSet.automaton.scansCompactRows).toBe(false);
    const text = 'Công an: trang CÁ ĐỘ bóng đá của nhà cái, xem phim sex ở nhacaivip; Ca do bong da. nhà  cái! công-an'.normalize('NFD');
    const compactScanner = phrases.scanner(2);
    const denseScanner = denseSet.scanner(3);
    for (let at = 0; at < text.length; at += 7) {
      compactScanner.append(text, at, Math.min(text.length, at + 7));
      denseScanner.append(text, at, Math.min(text.length, at + 7));
    }
    compactScanner.finish();
    denseScanner.finish();
    expect([...compactScanner.scores]).toEqual([50 + 30 - 20 + 25, 70]);
    expect([...denseScanner.scores]).toEqual([50 + 30 - 20 + 25, 70, 0]);
    expect(denseScanner.evidence()).toEqual(compactScanner.evidence());
  });

  it('scores a recycled scanner like a fresh one', () => {
    const first = phrases.scanner(2);
    first.append('trang cá độ bóng đá, phim sex');
    first.finish();
    expect([...first.scores]).toEqual([50, 70]);
    phrases.recycle(first);
    const second = phrases.scanner(2);
    expect(second).toBe(first);
    second.append('nhà cái');
    second.finish();
    expect([...second.scores]).toEqual([30, 0]);
    expect(second.evidence()).toEqual(['nhà cái (30)']);
  });
});

describe('folding', () => {
  // Letters with and without diacritics (NFC), bare combining marks (NFD), đ, spaces and
  // punctuation, zero-width characters, full-width letters, an emoji (two code units).
  const ALPHABET = [...'aăâbcdđeêghiklmnoôơpqrstuưvxyAĂÂĐÊÔƠƯáàảãạấầẩẫậếềểễệốồổỗộớờởỡợứừửữựíìỉĩịýỳỷỹỵ019 .,;!?-\n\t'];
  const EXTRAS = ['\u0301', '\u0300', '\u0303', '\u0309', '\u0323', '\u0306', '\u0302', '\u031b', '\u200b', '\u00ad', 'Ｗ', '😀', 'ß', 'İ'];

  function randomText(random: () => number, length: number): string {
    let text = '';
    for (let i = 0; i < length; i++) {
      const pick = random();
      text += pick < 0.85 ? ALPHABET[Math.floor(random() * ALPHABET.length)] : EXTRAS[Math.floor(random() * EXTRAS.length)];
    }
    return random() < 0.3 ? text.normalize('NFD') : text;
  }

  it('folds random Vietnamese text exactly like the code unit by code unit reference', () => {
    let seed = 42;
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    for (let round = 0; round < 2000; round++) {
      const text = randomText(random, 1 + Math.floor(random() * 80));
      const fast = new FoldedText(8);
      fast.reset();
      const cut = Math.floor(random() * (text.length + 1));
      fast.appendText(text, 0, cut);
      fast.appendText(text, cut);
      const reference = new FoldedText(8);
      reference.reset();
      reference.reserve(text.length + 2);
      for (let i = 0; i < text.length; i++) reference.pushCodeUnit(text.charCodeAt(i));
      expect(fast.length, JSON.stringify(text)).toBe(reference.length);
      expect([...fast.base.subarray(0, fast.length)], JSON.stringify(text)).toEqual([...reference.base.subarray(0, reference.length)]);
      expect([...fast.marks.subarray(0, fast.length)], JSON.stringify(text)).toEqual([...reference.marks.subarray(0, reference.length)]);
    }
  });
});
