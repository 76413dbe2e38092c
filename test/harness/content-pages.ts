/**
 * Pages for the content inspection tests: the fixtures of test/fixtures/content served
 * as an origin would (gzip, br, deflate, windows-1258, without diacritics), and a
 * driver that feeds a body to an inspector in chunks of a given size.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { ContentInspection, ContentVerdict } from '../../src/content/inspector.js';

/** The address a teacher's device has in contentPolicy. */
export const TEACHER_ADDRESS = '127.0.0.3';

/**
 * The rules of the proxy content tests: pupils (`tieu-hoc`, the default) have a
 * content_limit of 60, the teacher at TEACHER_ADDRESS (`giao-vien`) has none; HTTPS to
 * `httpsPort` is intercepted for both.
 */
export function contentPolicy(httpsPort: number): string {
  return `version: 1
default_profile: tieu-hoc
profiles:
  tieu-hoc:
    name: "Tiểu học"
    block_categories: [adult, gambling]
    inspect: true
    content_limit: 60
  giao-vien:
    name: "Giáo viên"
    block_categories: [adult, gambling]
    inspect: true
connect_ports: [443, ${httpsPort}]
clients:
  - cidr: ${TEACHER_ADDRESS}/32
    profile: giao-vien
intercept: always
`;
}

export const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/content');

export function fixtureNames(): string[] {
  return readdirSync(FIXTURES)
    .filter((name) => name.endsWith('.html'))
    .sort();
}

export function fixture(name: string): string {
  return readFileSync(path.join(FIXTURES, name), 'utf8');
}

/** Vietnamese as typed without an IME: every diacritic dropped, `đ` as `d`. */
export function stripDiacritics(text: string): string {
  return text.normalize('NFD').replace(/\p{M}/gu, '').replace(/đ/g, 'd').replace(/Đ/g, 'D');
}

const WINDOWS_1258 = (() => {
  const decoder = new TextDecoder('windows-1258');
  const table = new Map<string, number>();
  for (let b = 0; b < 256; b++) {
    const ch = decoder.decode(Uint8Array.of(b));
    if (ch !== '\ufffd' && !table.has(ch)) table.set(ch, b);
  }
  return table;
})();
const TONES = new Set(['\u0300', '\u0301', '\u0303', '\u0309', '\u0323']);

/**
 * Encodes text in windows-1258, as old Vietnamese sites wrote it: letters with
 * a circumflex, breve or horn are single bytes, tones are combining marks after them.
 */
export function encodeWindows1258(text: string): Buffer {
  const out: number[] = [];
  for (const ch of text.normalize('NFC')) {
    const direct = WINDOWS_1258.get(ch);
    if (direct !== undefined) {
      out.push(direct);
      continue;
    }
    const parts = [...ch.normalize('NFD')];
    const tones = parts.filter((p) => TONES.has(p));
    const letter = parts
      .filter((p) => !TONES.has(p))
      .join('')
      .normalize('NFC');
    const letterByte = WINDOWS_1258.get(letter);
    const toneBytes = tones.map((t) => WINDOWS_1258.get(t));
    if (letterByte === undefined || toneBytes.some((b) => b === undefined)) throw new Error(`cannot write ${ch} in windows-1258`);
    out.push(letterByte, ...(toneBytes as number[]));
  }
  return Buffer.from(out);
}

export interface ServedPage {
  readonly variant: string;
  readonly contentType: string;
  readonly contentEncoding: string | undefined;
  readonly body: Buffer;
}

/** One page as origins serve it: plain UTF-8, gzip, br, deflate, windows-1258 declared in a meta tag, and without diacritics. */
export function servedVariants(html: string): ServedPage[] {
  const utf8 = Buffer.from(html);
  const legacy = html.replace('<meta charset="utf-8">', '<meta http-equiv="Content-Type" content="text/html; charset=windows-1258">');
  return [
    { variant: 'utf-8', contentType: 'text/html; charset=utf-8', contentEncoding: undefined, body: utf8 },
    { variant: 'gzip', contentType: 'text/html; charset=utf-8', contentEncoding: 'gzip', body: zlib.gzipSync(utf8) },
    { variant: 'br', contentType: 'text/html; charset=utf-8', contentEncoding: 'br', body: zlib.brotliCompressSync(utf8) },
    { variant: 'deflate', contentType: 'text/html', contentEncoding: 'deflate', body: zlib.deflateSync(utf8) },
    { variant: 'windows-1258', contentType: 'text/html', contentEncoding: undefined, body: encodeWindows1258(legacy) },
    { variant: 'no-diacritics', contentType: 'text/html; charset=utf-8', contentEncoding: undefined, body: Buffer.from(stripDiacritics(html)) },
  ];
}

export interface InspectionRun {
  readonly verdict: ContentVerdict | null;
  /** Bytes the client received, in order. */
  readonly passed: Buffer;
  /** Bytes received before the verdict, or all of them. */
  readonly passedBeforeVerdict: number;
  readonly scores: Int32Array | null;
}

/** Feeds `body` in chunks of `chunkSize` bytes, as the proxy would; null verdict when the response is not inspected. */
export function runInspection(inspection: ContentInspection, page: ServedPage, chunkSize = 1460): InspectionRun {
  const inspector = inspection.begin(page.contentType, page.contentEncoding);
  if (inspector === null) return { verdict: null, passed: page.body, passedBeforeVerdict: page.body.length, scores: null };
  const passed: Buffer[] = [];
  for (let at = 0; at < page.body.length; at += chunkSize) {
    const step = inspector.write(page.body.subarray(at, at + chunkSize));
    passed.push(...step.pass);
    if (step.verdict) return done(step.verdict);
  }
  const last = inspector.end();
  passed.push(...last.pass);
  return done(last.verdict ?? null);

  function done(verdict: ContentVerdict | null): InspectionRun {
    const all = Buffer.concat(passed);
    return { verdict, passed: all, passedBeforeVerdict: all.length, scores: inspector!.scores };
  }
}
