/**
 * The compiled page scan reads pages on 16-bit automaton rows while the content phrases
 * fit them (src/policy/keywords.ts, CompactRows), else on 32-bit rows, whose memory grows
 * with the list (states × alphabet × 4 bytes, and as much again for the dense table).
 * `lachan rules lint` and `lachan check` say so in one line, with the figures, when a
 * list has outgrown 16 bits, so the change is never silent; while it fits they say nothing.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { PhraseSetBuilder } from '../src/policy/phrases.js';
import { lachan, makePhrasesRulesDir, REPO_ROOT, removeDir } from './harness/index.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

const NOTE = /^thông tin: .*cụm từ nội dung không vừa bảng 16 bit/m;

/** `count` phrases of two made-up five-letter words each: few shared prefixes, so many states. */
function phrases(count: number): string {
  const word = (n: number) => Array.from({ length: 5 }, (_, i) => String.fromCharCode(97 + (Math.floor(n / 26 ** i) % 26))).join('');
  return Array.from({ length: count }, (_, i) => `10 ${word(i * 7919 + 13)} ${word(i * 104_729 + 101)}`).join('\n');
}

function rulesWith(phraseCount: number): string {
  const dir = makePhrasesRulesDir(`${phrases(phraseCount)}\n`);
  dirs.push(dir);
  return dir;
}

describe('the phrase table outgrown', () => {
  it('is said in one line by rules lint and check, with the 32-bit table the pages are still read with and its memory', () => {
    const dir = rulesWith(3_000);
    const lint = lachan(['rules', 'lint', '--rules', dir]);
    expect(lint.code).toBe(0);
    expect(lint.stderr.match(new RegExp(NOTE.source, 'gm'))).toHaveLength(1);
    const builder = new PhraseSetBuilder();
    for (const line of phrases(3_000).split('\n')) expect(builder.addLine(line, 0, 0, 1)).toBeNull();
    const { states, alphabetSize, cellBytes } = builder.build().automaton.pageTable;
    expect(cellBytes).toBe(4);
    const megabytes = ((states * alphabetSize * 4) / 1e6).toLocaleString('vi-VN', { maximumFractionDigits: 1 });
    expect(lint.stderr).toContain(
      `thông tin: 3.000 cụm từ nội dung không vừa bảng 16 bit (65.536 ô); trang vẫn được đọc bằng bộ quét biên dịch, với bảng 32 bit: ` +
        `${states.toLocaleString('vi-VN')} trạng thái × ${alphabetSize} ký hiệu × 4 byte = ${megabytes} MB bộ nhớ, cộng ${megabytes} MB của bảng đầy đủ`,
    );
    expect(lint.stdout).toBe('');

    const check = lachan(['check', '--rules', dir, '--data', dir, '--profile', 'young', '--json', 'http://example.vn/']);
    expect(check.code).toBe(0);
    expect(check.stderr.match(new RegExp(NOTE.source, 'gm'))).toHaveLength(1);
    // The decisions stay on stdout, one JSON object a line.
    expect(JSON.parse(check.stdout)).toMatchObject({ action: 'allow' });
  });

  it('is not said while the phrases fit, the shipped ones included', () => {
    for (const dir of [rulesWith(50), `${REPO_ROOT}/rules`]) {
      const lint = lachan(['rules', 'lint', '--rules', dir]);
      expect(lint.code).toBe(0);
      expect(lint.stderr).not.toMatch(NOTE);
      const check = lachan(['check', '--rules', dir, '--data', dir, '--client', '10.0.0.9', 'http://example.vn/']);
      expect(check.code).toBe(0);
      expect(check.stderr).not.toMatch(NOTE);
    }
  });
});
