/**
 * A list version as lachan keeps it: the entries an outside list yields, one a line,
 * sorted and unique, in the rules folder's own forms (a canonical host for a domain
 * rule, `host/path` for a URL rule). The same text always has the same version, so a
 * gateway that fetched a list itself and one that rebuilt it from a collector's delta
 * name the same content the same way.
 */
import { createHash } from 'node:crypto';
import { DomainSetBuilder } from '../policy/domains.js';
import { UrlSetBuilder } from '../policy/urls.js';
import { canonicalRuleHost } from '../policy/hostname.js';
import { ListImporter, type LineFormat, type ListFormat } from '../rules/importers.js';

export interface ListVersion {
  /** 12 hex digits of the SHA-256 of `text`. */
  readonly version: string;
  /** Sorted unique entries, `\n` after each. */
  readonly text: string;
  readonly entries: number;
}

export type ListRefusalCode =
  | 'LACHAN_LIST_UNPARSEABLE'
  | 'LACHAN_LIST_SHRUNK'
  | 'LACHAN_LIST_UNREACHABLE'
  | 'LACHAN_LIST_HTTP'
  | 'LACHAN_LIST_DELTA'
  | 'LACHAN_LIST_UNCOMPILABLE';

/** Why a new version was not applied; the last good version keeps serving. */
export class ListRefusal extends Error {
  readonly code: ListRefusalCode;
  constructor(code: ListRefusalCode, message: string) {
    super(message);
    this.name = 'ListRefusal';
    this.code = code;
  }
}

export function listVersionOf(entries: readonly string[]): ListVersion {
  const sorted = [...new Set(entries)].sort();
  const text = sorted.length === 0 ? '' : `${sorted.join('\n')}\n`;
  return { version: createHash('sha256').update(text).digest('hex').slice(0, 12), text, entries: sorted.length };
}

export function entriesOf(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** The line format of each line of a download: a UT1 file holds domains, or `host/path` URL rules. */
function lineFormatOf(format: ListFormat, line: string): LineFormat {
  if (format !== 'ut1') return format;
  const trimmed = line.trim();
  return trimmed.includes('/') ? 'ut1-urls' : 'domains';
}

/**
 * Parses a downloaded list with the import parsers. Refuses a download that is not
 * the list it claims to be: nothing usable, or mostly lines of another shape (an
 * HTML error page served with 200, a hosts file subscribed as adblock).
 */
export function parseDownload(format: ListFormat, body: string): ListVersion {
  const importer = new ListImporter();
  let line = 0;
  let start = 0;
  while (start <= body.length) {
    let end = body.indexOf('\n', start);
    if (end === -1) end = body.length;
    const text = body.slice(start, end);
    importer.addLine(lineFormatOf(format, text), text, 'download', ++line);
    if (end === body.length) break;
    start = end + 1;
  }
  const result = importer.result();
  const { stats } = result;
  const entries = [...result.domains, ...result.urls];
  let malformed = 0;
  for (const reason of ['malformed', 'invalid-host'] as const) malformed += stats.skipped.get(reason)?.count ?? 0;
  const ruleLines = stats.lines - stats.comments;
  if (entries.length === 0)
    throw new ListRefusal('LACHAN_LIST_UNPARSEABLE', `không có mục ${format} nào trong ${ruleLines} dòng (sai định dạng, hoặc không phải danh sách)`);
  if (malformed * 2 > ruleLines) {
    throw new ListRefusal('LACHAN_LIST_UNPARSEABLE', `${malformed} trên ${ruleLines} dòng không phải mục ${format} (sai định dạng, hoặc không phải danh sách)`);
  }
  return listVersionOf(entries);
}

/**
 * Compiles the entries the way the rules loader will, so that a version that would
 * not load is refused here and never reaches a reload.
 */
export function checkCompiles(candidate: ListVersion): void {
  const domains = new DomainSetBuilder();
  const urls = new UrlSetBuilder();
  let line = 0;
  for (const entry of entriesOf(candidate.text)) {
    line++;
    if (entry.includes('/')) {
      const error = urls.add(entry, 0, 0, line);
      if (error !== null) throw new ListRefusal('LACHAN_LIST_UNCOMPILABLE', `mục ${line} "${entry}": ${error}`);
    } else if (!domains.addCanonicalSpan(entry, 0, entry.length, 0, 0, line)) {
      if (canonicalRuleHost(entry) !== entry) throw new ListRefusal('LACHAN_LIST_UNCOMPILABLE', `mục ${line} "${entry}" không phải tên miền chuẩn`);
      domains.add(entry, 0, 0, line);
    }
  }
  domains.build();
  urls.build();
}

/** A new version that lost more than half the entries of the last good one is refused. */
export function checkNotShrunk(candidate: ListVersion, lastGood: { readonly entries: number } | null): void {
  if (lastGood === null) return;
  if (candidate.entries * 2 < lastGood.entries) {
    throw new ListRefusal('LACHAN_LIST_SHRUNK', `phiên bản mới chỉ có ${candidate.entries} mục, ít hơn một nửa ${lastGood.entries} mục đang dùng`);
  }
}

/** Added and removed entries from `base` to `next` (both sorted unique), as `+entry` / `-entry` lines. */
export function diffVersions(base: string, next: string): string {
  const a = entriesOf(base);
  const b = entriesOf(next);
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i]! < b[j]!)) out.push(`-${a[i++]!}`);
    else if (i >= a.length || b[j]! < a[i]!) out.push(`+${b[j++]!}`);
    else {
      i++;
      j++;
    }
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/** Applies a delta from diffVersions to `base`; throws ListRefusal when it does not fit. */
export function applyDelta(base: string, delta: string): ListVersion {
  const entries = new Set(entriesOf(base));
  for (const line of entriesOf(delta)) {
    const entry = line.slice(1);
    if (line.startsWith('+')) entries.add(entry);
    else if (line.startsWith('-')) {
      if (!entries.delete(entry)) throw new ListRefusal('LACHAN_LIST_DELTA', `phần thay đổi xoá "${entry}", mục không có trong phiên bản đang giữ`);
    } else throw new ListRefusal('LACHAN_LIST_DELTA', `dòng "${line.slice(0, 40)}" của phần thay đổi không phải +mục hay -mục`);
  }
  return listVersionOf([...entries]);
}
