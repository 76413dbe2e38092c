import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
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
const PIECE_BYTES = 1 << 16;

/**
 * Reads a rules file, gzip-compressed or not, in pieces of whole lines, so that a
 * list of millions of lines is never held whole (as one string it would cost its
 * size again while the rules compile next to the ones serving). `visit` gets each
 * piece as Latin-1 text, one character per byte, which is the text itself for the
 * ASCII of canonical host names; a line with other bytes must be decoded from
 * `bytes` as UTF-8, at the same offsets. `firstLine` is the piece's first line number.
 */
export async function forEachLinePiece(file: string, gzip: boolean, visit: (text: string, bytes: Buffer, firstLine: number) => number): Promise<void> {
  if (!gzip) return forEachPlainLinePiece(file, visit);
  const source = createReadStream(file, { highWaterMark: PIECE_BYTES });
  const stream: AsyncIterable<Buffer> = pipeline(source, createGunzip({ chunkSize: PIECE_BYTES }), () => {});
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

/**
 * forEachLinePiece for a file that is not compressed: every piece is read into one
 * buffer, the partial last line moved to its front, so that reading a 100 MB list
 * leaves no garbage buffers behind. A stream's fresh 1 MiB buffer a read, promoted
 * while its piece was being walked, waited for a full GC: tens of MB at a time, in the
 * malloc heap that the C library does not give back, beside the serving rules.
 */
async function forEachPlainLinePiece(file: string, visit: (text: string, bytes: Buffer, firstLine: number) => number): Promise<void> {
  const handle = await open(file, 'r');
  try {
    let buffer = Buffer.allocUnsafeSlow(PIECE_BYTES);
    let filled = 0;
    let line = 1;
    let first = true;
    for (;;) {
      // A line longer than the buffer: make room for it.
      if (filled === buffer.length) {
        const bigger = Buffer.allocUnsafeSlow(buffer.length * 2);
        buffer.copy(bigger, 0, 0, filled);
        buffer = bigger;
      }
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, null);
      if (bytesRead === 0) break;
      filled += bytesRead;
      // The UTF-8 byte-order mark some Windows editors write.
      if (first && filled >= 3) {
        first = false;
        if (buffer[0] === 0xef && buffer[1] === 0xbb && buffer[2] === 0xbf) {
          buffer.copy(buffer, 0, 3, filled);
          filled -= 3;
        }
      }
      const bytes = buffer.subarray(0, filled);
      const lastNewline = bytes.lastIndexOf(0x0a);
      if (lastNewline === -1) continue;
      line = visit(bytes.toString('latin1', 0, lastNewline), bytes, line) + 1;
      buffer.copy(buffer, 0, lastNewline + 1, filled);
      filled -= lastNewline + 1;
    }
    if (filled > 0) visit(buffer.toString('latin1', 0, filled), buffer.subarray(0, filled), line);
  } finally {
    await handle.close();
  }
}

/** Lines of a rules file (what forEachLinePiece will walk), without holding it whole. */
export async function countFileLines(file: string, gzip: boolean): Promise<number> {
  let lines = 1;
  const count = (chunk: Buffer): void => {
    for (let at = chunk.indexOf(0x0a); at !== -1; at = chunk.indexOf(0x0a, at + 1)) lines++;
  };
  if (!gzip) {
    // One buffer for every read, as forEachPlainLinePiece.
    const handle = await open(file, 'r');
    try {
      const buffer = Buffer.allocUnsafeSlow(PIECE_BYTES);
      for (
        let read = (await handle.read(buffer, 0, buffer.length, null)).bytesRead;
        read > 0;
        read = (await handle.read(buffer, 0, buffer.length, null)).bytesRead
      ) {
        count(buffer.subarray(0, read));
      }
    } finally {
      await handle.close();
    }
    return lines;
  }
  const source = createReadStream(file, { highWaterMark: PIECE_BYTES });
  for await (const chunk of pipeline(source, createGunzip({ chunkSize: PIECE_BYTES }), () => {}) as AsyncIterable<Buffer>) count(chunk);
  return lines;
}
