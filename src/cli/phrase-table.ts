/**
 * The one line `rules lint` and `check` print when the content phrases outgrow the 16-bit
 * phrase table (src/policy/keywords.ts, CompactRows): pages are then read by the string
 * path with the dense table instead of the compiled page scan (src/content/page-scan.ts),
 * at about half the speed, in twice the table memory. Nothing is wrong, and a longer list
 * would otherwise change this silently: information, not a warning.
 */
import type { Policy } from '../policy/engine.js';
import { contentRulesOf } from '../policy/phrases.js';

export function phraseTableNote(policy: Policy): string | null {
  const rules = contentRulesOf(policy);
  const phrases = rules.phrases;
  // No profile reads pages (no content_limit): the table is never used, there is nothing to say.
  if (rules.limits.size === 0 || phrases.automaton.scansCompactRows) return null;
  return (
    `thông tin: ${phrases.size.toLocaleString('vi-VN')} cụm từ nội dung không vừa bảng 16 bit (65.536 ô); ` +
    'trang được đọc bằng bảng đầy đủ thay cho bộ quét biên dịch: chậm khoảng gấp đôi, tốn gấp đôi bộ nhớ bảng'
  );
}
