/**
 * The one line `rules lint` and `check` print when the content phrases outgrow the 16-bit
 * phrase table (src/policy/keywords.ts, CompactRows): pages are then scanned with the
 * dense table, at the same speed in twice the memory. Nothing is wrong, and a longer list
 * would otherwise change this silently: information, not a warning.
 */
import type { Policy } from '../policy/engine.js';
import { contentRulesOf } from '../policy/phrases.js';

export function phraseTableNote(policy: Policy): string | null {
  const phrases = contentRulesOf(policy).phrases;
  if (phrases.automaton.scansCompactRows) return null;
  return (
    `thông tin: ${phrases.size.toLocaleString('vi-VN')} cụm từ nội dung không vừa bảng 16 bit (65.536 ô); ` +
    'trang được quét bằng bảng đầy đủ: cùng tốc độ, tốn gấp đôi bộ nhớ'
  );
}
