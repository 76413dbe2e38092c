/**
 * Parsers for outside block lists brought in with
 * `lachan rules import --format hosts|domains|adblock|ut1 --category NAME SRC`.
 * Over ~400 lines on purpose: four small format parsers share one line reader, one
 * skip-reason vocabulary and one counting importer; apart they would repeat them.
 *
 * Each list line becomes zero or more entries of our own formats (a host for a
 * category's `domains` file, a `host/path` rule for its `urls` file), a comment, or
 * a skip with a reason code, so that the CLI can tell the school's IT staff exactly
 * what did not come across and why. The line parser is pure; `ListImporter`
 * dedupes and counts; `importListSource` reads files line by line (lists run to
 * millions of lines) and is the only part that does I/O. Writing the category files
 * is the CLI's job.
 *
 * Semantics we knowingly widen (documented for the user in rules/README.md):
 * - hosts-file entries name exactly one host, while a line in our `domains` file also
 *   covers its subdomains. Block lists are written for DNS sinkholes, where a
 *   blocked parent would take its children down too, so nothing is done about it.
 * - adblock `|http://x.com` (exact host) becomes `x.com` with its subdomains, and
 *   `$third-party` rules block first-party loads too: a proxy sees no page context.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { canonicalRuleHost } from '../policy/hostname.js';
import { parseUrlRule } from '../policy/urls.js';

export const LIST_FORMATS = ['hosts', 'domains', 'adblock', 'ut1'] as const;
export type ListFormat = (typeof LIST_FORMATS)[number];

/** The formats of a single file; a UT1 folder holds one `domains` and one `urls` file. */
export type LineFormat = 'hosts' | 'domains' | 'adblock' | 'ut1-urls';

export type SkipReason =
  /** hosts-file names for the machine itself: localhost, broadcasthost, ip6-*… */
  | 'local-name'
  /** not a host name canonicalRuleHost accepts */
  | 'invalid-host'
  /** a bare top-level label such as `com`: a list entry must not take down a whole TLD */
  | 'top-level-domain'
  /** `*` inside a host name (`||matomo.*.vn^`) or a path: we match names, not patterns */
  | 'wildcard'
  /** adblock `@@` exception: to allow a site, add it to the profile's allow_domains */
  | 'exception-rule'
  /** adblock element hiding / scriptlet / HTML filtering (`##`, `#@#`, `#$#`, `$$`…) */
  | 'cosmetic-rule'
  /** adblock `/regex/` rules and UT1 `expressions` */
  | 'regex'
  /** adblock `$domain=` / `$denyallow=` / `$from=`… limit a rule to some pages or hosts */
  | 'restricted-rule'
  /** adblock options other than a plain network block (`$script`, `$redirect=`…) */
  | 'unsupported-option'
  /** adblock pattern not anchored at a host (`||` or `|scheme://`): a substring match */
  | 'unanchored-pattern'
  /** a port in the rule: rules name hosts and paths only */
  | 'port'
  /** the line does not have the shape of the chosen format (wrong --format?) */
  | 'malformed';

/** One line's outcome. A hosts line may name several hosts, so a line yields a list. */
export type LineItem =
  | { readonly kind: 'domain'; readonly host: string }
  | { readonly kind: 'url'; readonly rule: string }
  | { readonly kind: 'comment' }
  | { readonly kind: 'skip'; readonly reason: SkipReason; readonly text: string };

/** Vietnamese explanations for the import report, read by school IT staff. */
export const SKIP_REASON_TEXT: Readonly<Record<SkipReason, string>> = {
  'local-name': 'tên dành cho chính máy (localhost, broadcasthost, ip6-…), bỏ qua',
  'invalid-host': 'không phải tên miền hợp lệ',
  'top-level-domain': 'chỉ là một tên miền cấp cao nhất (như "com"), không nhập để tránh chặn cả miền',
  wildcard: 'có dấu * bên trong tên miền hoặc đường dẫn; lachan chỉ so khớp tên miền cụ thể',
  'exception-rule': 'quy tắc ngoại lệ @@; muốn cho phép một trang, hãy thêm vào allow_domains của hồ sơ',
  'cosmetic-rule': 'quy tắc ẩn phần tử trang (##, #@#, $$…), không áp dụng cho proxy',
  regex: 'biểu thức chính quy, lachan không hỗ trợ',
  'restricted-rule': 'quy tắc chỉ áp dụng trên một số trang ($domain=, $denyallow=…), không biểu diễn được',
  'unsupported-option': 'tùy chọn adblock không phải chặn cả tên miền ($script, $redirect=…)',
  'unanchored-pattern': 'mẫu adblock không bắt đầu bằng || hoặc |http://, là so khớp chuỗi con',
  port: 'có số cổng; quy tắc chỉ gồm tên miền và đường dẫn',
  malformed: 'dòng không đúng định dạng đã chọn (kiểm tra lại --format)',
};

const COMMENT: LineItem = { kind: 'comment' };

// Names a hosts file maps for the machine itself (Debian, StevenBlack headers).
const LOCAL_HOST_NAMES = new Set(['localhost', 'localhost.localdomain', 'local', 'broadcasthost', '0.0.0.0']);

// Adblock options under which `||host^` still means "block every request to host".
// A proxy has no notion of the page a request comes from, so `third-party` widens.
const NETWORK_BLOCK_OPTIONS = new Set(['important', 'third-party', '3p', 'all', 'document', 'doc']);
// Options that limit a rule to some pages, initiators or destinations.
const RESTRICTING_OPTIONS = new Set(['domain', 'denyallow', 'from', 'to', 'ctag', 'client', 'app', 'method']);

/** Parses one line of a list. Pure: the same line always gives the same items. */
export function parseListLine(format: LineFormat, rawLine: string): LineItem[] {
  const line = rawLine.trim(); // also drops the \r of CRLF files
  if (line.length === 0) return [COMMENT];
  switch (format) {
    case 'hosts':
      return parseHostsLine(line);
    case 'domains':
      return [parseDomainsLine(line)];
    case 'adblock':
      return [parseAdblockLine(line)];
    case 'ut1-urls':
      return [parseUt1UrlLine(line)];
  }
}

function parseHostsLine(line: string): LineItem[] {
  if (line.charCodeAt(0) === 0x23 /* # */) return [COMMENT];
  const hash = line.indexOf('#');
  const fields = (hash === -1 ? line : line.slice(0, hash)).split(/\s+/).filter((f) => f.length > 0);
  if (fields.length === 0) return [COMMENT];
  if (fields.length === 1 || !isIpAddress(fields[0]!)) {
    return [skip('malformed', line)];
  }
  const items: LineItem[] = [];
  for (let i = 1; i < fields.length; i++) {
    const name = fields[i]!;
    const lower = name.toLowerCase();
    if (LOCAL_HOST_NAMES.has(lower) || lower.startsWith('ip6-')) items.push(skip('local-name', name));
    else items.push(hostItem(name));
  }
  return items;
}

function parseDomainsLine(line: string): LineItem {
  if (line.charCodeAt(0) === 0x23 /* # */) return COMMENT;
  const hash = line.indexOf('#');
  let name = (hash === -1 ? line : line.slice(0, hash)).trim();
  if (/\s/.test(name)) return skip('malformed', line); // e.g. a hosts line: use --format hosts
  if (name.startsWith('*.')) name = name.slice(2); // Hagezi wildcard: the name and its subdomains
  if (name.includes('/')) return skip('malformed', line);
  return hostItem(name, line);
}

function parseAdblockLine(line: string): LineItem {
  const first = line.charCodeAt(0);
  if (first === 0x21 /* ! */) return COMMENT;
  if (first === 0x5b /* [ */ && line.endsWith(']')) return COMMENT; // [Adblock Plus 2.0]
  if (line.startsWith('@@')) return skip('exception-rule', line);
  if (isCosmetic(line)) return skip('cosmetic-rule', line);
  if (first === 0x23 /* # */) return COMMENT; // AdGuard DNS lists also allow `#` comments
  if (line.length > 2 && first === 0x2f /* / */ && line.endsWith('/')) return skip('regex', line);

  let pattern = line;
  let options: string | null = null;
  const dollar = line.lastIndexOf('$');
  if (dollar !== -1) {
    pattern = line.slice(0, dollar);
    options = line.slice(dollar + 1);
  }
  if (options !== null) {
    const problem = checkAdblockOptions(options);
    if (problem !== null) return skip(problem, line);
  }

  let rest: string;
  if (pattern.startsWith('||')) rest = pattern.slice(2);
  else if (pattern.startsWith('|')) {
    const scheme = /^\|(?:https?|wss?):\/\//i.exec(pattern);
    if (scheme === null) return skip('unanchored-pattern', line);
    rest = pattern.slice(scheme[0].length);
  } else return skip('unanchored-pattern', line);

  if (rest.endsWith('|')) rest = rest.slice(0, -1); // end-of-address anchor
  // `^` is a separator: at the end of the host or path it adds nothing to our
  // segment-boundary matching; anywhere else we cannot express it.
  if (rest.endsWith('^')) rest = rest.slice(0, -1);
  const slash = rest.indexOf('/');
  let hostPart = slash === -1 ? rest : rest.slice(0, slash);
  let pathPart = slash === -1 ? '' : rest.slice(slash);
  if (hostPart.endsWith('^')) hostPart = hostPart.slice(0, -1);
  if (pathPart.endsWith('*')) pathPart = pathPart.slice(0, -1); // prefix match is implied
  if (hostPart.includes('*') || pathPart.includes('*')) return skip('wildcard', line);
  if (hostPart.includes('^') || pathPart.includes('^')) return skip('malformed', line);
  if (hostPart.includes(':')) return skip('port', line);
  if (pathPart === '' || pathPart === '/') return hostItem(hostPart, line);
  const parsed = parseUrlRule(hostPart + pathPart);
  if (typeof parsed === 'string') return skip(canonicalRuleHost(hostPart) === null ? 'invalid-host' : 'malformed', line);
  return { kind: 'url', rule: parsed.host + parsed.path };
}

function isCosmetic(line: string): boolean {
  return /#[@?$%]?#|#@[$?%]#|\$@?\$/.test(line);
}

function checkAdblockOptions(options: string): SkipReason | null {
  for (const raw of options.split(',')) {
    const option = raw.trim().toLowerCase();
    const eq = option.indexOf('=');
    const name = eq === -1 ? option : option.slice(0, eq);
    if (RESTRICTING_OPTIONS.has(name)) return 'restricted-rule';
    if (!NETWORK_BLOCK_OPTIONS.has(name)) return 'unsupported-option';
  }
  return null;
}

/**
 * A UT1 `urls` line: `host/path`, no scheme. squidGuard compares URLs after removing
 * the scheme and a leading `www.`, on both the rule and the request; we drop `www.`
 * from the rule so that our host-and-subdomains matching gives the same result. A
 * `#fragment` never reaches a server, so it is cut off (most are `host/#…` on throwaway
 * hosts, where the rule then covers the whole site, which is what the list meant).
 */
function parseUt1UrlLine(line: string): LineItem {
  if (line.charCodeAt(0) === 0x23 /* # */) return COMMENT;
  const rest = line.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  if (/\s/.test(rest)) return skip('malformed', line);
  const hostEnd = rest.search(/[/?#]/);
  const hostPart = hostEnd === -1 ? rest : rest.slice(0, hostEnd);
  if (hostPart.includes(':')) return skip('port', line);
  if (hostPart.includes('*')) return skip('wildcard', line);
  // The rules loader's own parser, so that the written rule is already in the form
  // it compares (fragment cut, HTML escapes undone, percent-encoding normalised).
  const parsed = parseUrlRule(rest);
  if (typeof parsed === 'string') return skip(canonicalRuleHost(hostPart) === null ? 'invalid-host' : 'malformed', line);
  let host = parsed.host;
  if (host.startsWith('www.') && host.indexOf('.', 4) !== -1) host = host.slice(4);
  return { kind: 'url', rule: host + parsed.path };
}

function hostItem(name: string, lineForReport: string = name): LineItem {
  if (name.includes('*')) return skip('wildcard', lineForReport);
  if (name.includes(':') && !isIpAddress(name)) return skip('port', lineForReport);
  const host = canonicalRuleHost(name);
  if (host === null) return skip('invalid-host', lineForReport);
  if (!host.includes('.') && !host.includes(':')) return skip('top-level-domain', lineForReport);
  return { kind: 'domain', host };
}

function skip(reason: SkipReason, text: string): LineItem {
  return { kind: 'skip', reason, text };
}

function isIpAddress(text: string): boolean {
  return /^\d{1,3}(?:\.\d{1,3}){3}$/.test(text) || (text.includes(':') && /^[0-9a-f:.]+$/i.test(text));
}

// ---------------------------------------------------------------------------

/** Where a skipped line came from, for the report. */
export interface SkipExample {
  readonly file: string;
  readonly line: number;
  readonly text: string;
}

export interface SkipCount {
  count: number;
  /** The first few skipped lines of this reason. */
  readonly examples: SkipExample[];
}

export interface ImportStats {
  /** Lines read, comments and blank lines included. */
  lines: number;
  comments: number;
  /** Entries accepted (after dedupe), by kind. */
  domains: number;
  urls: number;
  /** Entries seen again within this import, not written twice. */
  duplicates: number;
  readonly skipped: Map<SkipReason, SkipCount>;
  /** Files of the source that were not read at all, with why (UT1 `expressions`). */
  readonly skippedFiles: { readonly file: string; readonly lines: number; readonly reason: SkipReason }[];
}

export interface ImportResult {
  /** Canonical hosts for the category's `domains` file, in first-seen order. */
  readonly domains: string[];
  /** `host/path` rules for the category's `urls` file, in first-seen order. */
  readonly urls: string[];
  readonly stats: ImportStats;
  /** UT1 only: the first line of the folder's `usage` (`black` or `white`), if any. */
  readonly ut1Usage: string | null;
}

const EXAMPLES_PER_REASON = 3;

/**
 * Feeds lines, keeps unique entries in order and counts everything else. One
 * importer per `lachan rules import` run, so that a UT1 folder's `domains` and
 * `urls` share the counters.
 */
export class ListImporter {
  readonly #domains = new Set<string>();
  readonly #urls = new Set<string>();
  readonly stats: ImportStats = {
    lines: 0,
    comments: 0,
    domains: 0,
    urls: 0,
    duplicates: 0,
    skipped: new Map(),
    skippedFiles: [],
  };

  /** `line` is 1-based and `file` the name shown in the report. */
  addLine(format: LineFormat, text: string, file: string, line: number): void {
    this.stats.lines++;
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    for (const item of parseListLine(format, text)) {
      switch (item.kind) {
        case 'comment':
          this.stats.comments++;
          break;
        case 'domain':
          this.#add(this.#domains, item.host);
          break;
        case 'url':
          this.#add(this.#urls, item.rule);
          break;
        case 'skip':
          this.#skip(item.reason, { file, line, text: item.text });
          break;
      }
    }
  }

  noteSkippedFile(file: string, lines: number, reason: SkipReason): void {
    this.stats.skippedFiles.push({ file, lines, reason });
  }

  result(ut1Usage: string | null = null): ImportResult {
    this.stats.domains = this.#domains.size;
    this.stats.urls = this.#urls.size;
    return { domains: [...this.#domains], urls: [...this.#urls], stats: this.stats, ut1Usage };
  }

  #add(set: Set<string>, value: string): void {
    if (set.has(value)) this.stats.duplicates++;
    else set.add(value);
  }

  #skip(reason: SkipReason, example: SkipExample): void {
    let entry = this.stats.skipped.get(reason);
    if (entry === undefined) {
      entry = { count: 0, examples: [] };
      this.stats.skipped.set(reason, entry);
    }
    entry.count++;
    if (entry.examples.length < EXAMPLES_PER_REASON) entry.examples.push(example);
  }
}

export type ImportErrorCode = 'ENOENT' | 'ENOTDIR' | 'EISDIR' | 'ENOLIST';

export class ImportError extends Error {
  readonly code: ImportErrorCode;
  constructor(code: ImportErrorCode, message: string) {
    super(message);
    this.name = 'ImportError';
    this.code = code;
  }
}

// UT1 files that hold regular expressions matched against the whole URL.
const UT1_EXPRESSION_FILES = ['expressions', 'very_restrictive_expression'];

/**
 * Imports SRC: a list file for `hosts`, `domains` and `adblock`, a UT1 category
 * folder (with `domains` and/or `urls`) for `ut1`. Throws ImportError for a missing
 * or wrong kind of source; every problem inside the lists is counted, not thrown.
 */
/** Called as a source is read, with the bytes read so far across all its files. */
export type ImportProgress = (bytesRead: number) => void;

export async function importListSource(format: ListFormat, src: string, onProgress: ImportProgress = () => {}): Promise<ImportResult> {
  const info = await stat(src).catch(() => null);
  if (info === null) throw new ImportError('ENOENT', `${src}: không tìm thấy`);
  const importer = new ListImporter();
  if (format !== 'ut1') {
    if (info.isDirectory()) throw new ImportError('EISDIR', `${src}: là thư mục; --format ${format} cần một tệp danh sách`);
    await feedFile(importer, format, src, 0, onProgress);
    return importer.result();
  }
  if (!info.isDirectory()) throw new ImportError('ENOTDIR', `${src}: --format ut1 cần thư mục một danh mục UT1 (chứa domains, urls)`);
  let found = false;
  let bytesBefore = 0;
  for (const [name, lineFormat] of [
    ['domains', 'domains'],
    ['urls', 'ut1-urls'],
  ] as const) {
    const file = path.join(src, name);
    if (await isFile(file)) {
      found = true;
      bytesBefore = await feedFile(importer, lineFormat, file, bytesBefore, onProgress);
    }
  }
  for (const name of UT1_EXPRESSION_FILES) {
    const file = path.join(src, name);
    if (await isFile(file)) importer.noteSkippedFile(file, await countRuleLines(file), 'regex');
  }
  if (!found) throw new ImportError('ENOLIST', `${src}: không có tệp domains hay urls`);
  return importer.result(await readUt1Usage(path.join(src, 'usage')));
}

async function feedFile(importer: ListImporter, format: LineFormat, file: string, bytesBefore: number, onProgress: ImportProgress): Promise<number> {
  let line = 0;
  const stream = createReadStream(file, { encoding: 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  for await (const text of lines) {
    importer.addLine(format, text, file, ++line);
    if ((line & 0xffff) === 0) onProgress(bytesBefore + stream.bytesRead);
  }
  onProgress(bytesBefore + stream.bytesRead);
  return bytesBefore + stream.bytesRead;
}

async function countRuleLines(file: string): Promise<number> {
  let count = 0;
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const text of lines) {
    const trimmed = text.trim();
    if (trimmed.length > 0 && !trimmed.startsWith('#')) count++;
  }
  return count;
}

async function readUt1Usage(file: string): Promise<string | null> {
  if (!(await isFile(file))) return null;
  // A few words: `black` or `white`, then aliases of the category.
  for (const text of (await readFile(file, 'utf8')).split('\n')) {
    const word = text.trim();
    if (word.length > 0 && !word.startsWith('#')) return word.toLowerCase();
  }
  return null;
}

async function isFile(file: string): Promise<boolean> {
  const info = await stat(file).catch(() => null);
  return info?.isFile() === true;
}

/**
 * The import report as lines of Vietnamese text for school IT staff: what was taken,
 * what was skipped and why, with the first examples of each.
 */
export function describeImport(result: ImportResult): string[] {
  const { stats } = result;
  const out = [`Đã nhận ${stats.domains} tên miền và ${stats.urls} quy tắc URL; ${stats.duplicates} dòng trùng lặp được gộp.`];
  for (const [reason, entry] of stats.skipped) {
    out.push(`Bỏ qua ${entry.count} dòng [${reason}]: ${SKIP_REASON_TEXT[reason]}`);
    for (const example of entry.examples) out.push(`  ${example.file}:${example.line}: ${example.text}`);
  }
  for (const file of stats.skippedFiles) {
    out.push(`Không đọc tệp ${file.file} (${file.lines} dòng) [${file.reason}]: ${SKIP_REASON_TEXT[file.reason]}`);
  }
  if (result.ut1Usage === 'white') {
    out.push('Chú ý: thư mục UT1 này là danh sách TRẮNG (trang nên cho phép), không phải danh sách chặn.');
  }
  return out;
}
