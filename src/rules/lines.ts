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

/**
 * Like forEachRuleLine, but hands over the trimmed span of each rule line instead
 * of a string, so the domain loader can read millions of lines without creating one.
 */
export function forEachRuleSpan(text: string, visit: (start: number, end: number, line: number) => void): void {
  let start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 0;
  const length = text.length;
  while (start <= length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = length;
    line++;
    let from = start;
    let to = end;
    while (from < to && text.charCodeAt(from) <= 0x20) from++;
    while (to > from && text.charCodeAt(to - 1) <= 0x20) to--;
    if (from < to && text.charCodeAt(from) !== 0x23 /* # */) visit(from, to, line);
    if (end === length) break;
    start = end + 1;
  }
}
