import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';

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
 * `text` may be a piece of a file whose first line is `firstLine`; returns the
 * number of the last line walked.
 */
export function forEachRuleSpan(text: string, visit: (start: number, end: number, line: number) => void, firstLine = 1): number {
  let start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = firstLine - 1;
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
  return line;
}

/** Bytes read at a time: big enough for few calls, small enough to be no memory at all. */
const PIECE_BYTES = 1 << 20;

/**
 * Reads a rules file, gzip-compressed or not, in pieces of whole lines, so that a
 * list of millions of lines is never held whole (as one string it would cost its
 * size again while the rules compile next to the ones serving). `visit` gets each
 * piece as Latin-1 text, one character per byte, which is the text itself for the
 * ASCII of canonical host names; a line with other bytes must be decoded from
 * `bytes` as UTF-8, at the same offsets. `firstLine` is the piece's first line number.
 */
export async function forEachLinePiece(file: string, gzip: boolean, visit: (text: string, bytes: Buffer, firstLine: number) => number): Promise<void> {
  const source = createReadStream(file, { highWaterMark: PIECE_BYTES });
  const stream: AsyncIterable<Buffer> = gzip ? pipeline(source, createGunzip({ chunkSize: PIECE_BYTES }), () => {}) : source;
  let carry: Buffer | null = null;
  let line = 1;
  for await (const chunk of stream) {
    let bytes: Buffer = carry === null ? chunk : Buffer.concat([carry, chunk]);
    // The UTF-8 byte-order mark some Windows editors write.
    if (line === 1 && carry === null && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
    const lastNewline = bytes.lastIndexOf(0x0a);
    if (lastNewline === -1) {
      carry = bytes;
      continue;
    }
    line = visit(bytes.toString('latin1', 0, lastNewline), bytes, line) + 1;
    carry = lastNewline + 1 < bytes.length ? bytes.subarray(lastNewline + 1) : null;
  }
  if (carry !== null) visit(carry.toString('latin1'), carry, line);
}

/** Lines of a rules file (what forEachLinePiece will walk), without holding it whole. */
export async function countFileLines(file: string, gzip: boolean): Promise<number> {
  const source = createReadStream(file, { highWaterMark: PIECE_BYTES });
  const stream: AsyncIterable<Buffer> = gzip ? pipeline(source, createGunzip({ chunkSize: PIECE_BYTES }), () => {}) : source;
  let lines = 1;
  for await (const chunk of stream) {
    for (let at = chunk.indexOf(0x0a); at !== -1; at = chunk.indexOf(0x0a, at + 1)) lines++;
  }
  return lines;
}
