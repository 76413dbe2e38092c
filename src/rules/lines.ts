/**
 * Calls `visit` for every rule line of a rules file: trimmed, without blank lines
 * and `#` comments, with its 1-based line number. Walks the text with indexOf so
 * that a multi-million-line list is not split into an array first.
 */
export function forEachRuleLine(text: string, visit: (rule: string, line: number) => void): void {
  let start = text.charCodeAt(0) === 0xfeff ? 1 : 0; // UTF-8 BOM written by some Windows editors
  let line = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    line++;
    const rule = text.slice(start, end).trim();
    if (rule.length > 0 && rule.charCodeAt(0) !== 0x23 /* # */) visit(rule, line);
    if (end === text.length) break;
    start = end + 1;
  }
}
