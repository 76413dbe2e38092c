/**
 * The one line `rules lint` and `check` print when the content phrases outgrow the 16-bit
 * phrase table (src/policy/keywords.ts, CompactRows). Pages are still read by the
 * compiled page scan (src/content/page-scan.ts), at the same speed, but on 32-bit rows:
 * states × alphabet × 4 bytes in the scan's memory, beside the dense table of the same
 * size that URL keywords and pages in other charsets use. That memory grows with the
 * list (12.6 MB each for the shipped phrases with Debian's e2guardian lists added), so
 * the line says how much: information, not a warning, and a longer list would
 * otherwise change it silently.
 */
import type { Policy } from '../policy/engine.js';
import { contentRulesOf } from '../policy/phrases.js';

export function phraseTableNote(policy: Policy): string | null {
  const rules = contentRulesOf(policy);
  const phrases = rules.phrases;
  // No profile reads pages (no content_limit): the table is never used, there is nothing to say.
  if (rules.limits.size === 0 || phrases.size === 0) return null;
  const { states, alphabetSize, cellBytes } = phrases.automaton.pageTable;
  if (cellBytes === 2) return null;
  const megabytes = ((states * alphabetSize * cellBytes) / 1e6).toLocaleString('vi-VN', { maximumFractionDigits: 1 });
  return (
    `thông tin: ${phrases.size.toLocaleString('vi-VN')} cụm từ nội dung không vừa bảng 16 bit (65.536 ô); ` +
    `trang vẫn được đọc bằng bộ quét biên dịch, với bảng 32 bit: ${states.toLocaleString('vi-VN')} trạng thái × ${alphabetSize} ký hiệu × 4 byte = ` +
    `${megabytes} MB bộ nhớ, cộng ${megabytes} MB của bảng đầy đủ (từ khoá trong URL, trang không phải UTF-8)`
  );
}
