/**
 * The real lists of ../shared/data as benchmark input: every domain list, the UT1
 * URL rules, generated names to reach a target size, and a request stream drawn from
 * the top-sites list. Shared by the matcher benchmarks.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { importListSource } from '../../src/rules/importers.js';

/**
 * The lists folder: `--data DIR` on the bench's command line (a user without
 * ../shared/data points it at downloaded lists laid out the same way), else
 * ../shared/data beside the repository.
 */
function dataFolder(): string {
  const at = process.argv.indexOf('--data');
  const given = at >= 0 ? process.argv[at + 1] : undefined;
  return path.resolve(given ?? path.resolve(import.meta.dirname, '../../../../shared/data'));
}

export const DATA = dataFolder();
export const UT1 = path.join(DATA, 'ut1');

/** UT1 categories that are allow lists (`usage` says `white`). */
export const UT1_WHITE = new Set(['liste_blanche', 'child', 'sexual_education']);

/** Real lists in formats other than UT1's, converted by our own importers. */
export const EXTRA_LISTS: readonly (readonly [category: string, format: 'domains' | 'hosts' | 'adblock', file: string])[] = [
  ['sb-unified', 'domains', 'stevenblack/unified-hosts.domains.txt'],
  ['sb-porn', 'domains', 'stevenblack/porn-only.domains.txt'],
  ['sb-gambling', 'domains', 'stevenblack/gambling-only.domains.txt'],
  ['hagezi-light', 'domains', 'hagezi/domains/light.txt'],
  ['hagezi-nsfw', 'domains', 'hagezi/wildcard/nsfw-onlydomains.txt'],
  ['hagezi-gambling', 'domains', 'hagezi/wildcard/gambling.mini.txt'],
  ['hagezi-doh-vpn', 'adblock', 'hagezi/adblock/doh-vpn-proxy-bypass.txt'],
  ['hostsvn', 'hosts', 'hostsvn/hosts'],
  ['hostsvn-gambling', 'domains', 'hostsvn/extensions/gambling/domain.txt'],
  ['hostsvn-adult', 'domains', 'hostsvn/extensions/adult/domain.txt'],
  ['hostsvn-threat', 'domains', 'hostsvn/extensions/threat/domain.txt'],
];

export function ut1Categories(): string[] {
  return readdirSync(UT1)
    .filter((name) => statSync(path.join(UT1, name)).isDirectory())
    .sort();
}

/** A domain list as a rules loader holds it once read: one file's text, one host a line. */
export interface DomainListText {
  readonly category: string;
  readonly text: string;
  readonly lines: number;
}

/** Every real domain list: UT1 `domains` files as they are, the others converted to plain domains. */
export async function realDomainLists(): Promise<DomainListText[]> {
  const lists: DomainListText[] = [];
  for (const category of ut1Categories()) {
    const file = path.join(UT1, category, 'domains');
    if (!existsSync(file)) continue; // adult has only urls here
    const text = readFileSync(file, 'utf8');
    lists.push({ category, text, lines: countLines(text) });
  }
  for (const [category, format, file] of EXTRA_LISTS) {
    const { domains } = await importListSource(format, path.join(DATA, file));
    lists.push({ category, text: `${domains.join('\n')}\n`, lines: domains.length });
  }
  return lists;
}

/** `count` distinct made-up host names (2–3 labels, 20–30 characters, like real ones). */
export function generatedDomainText(count: number): DomainListText {
  const parts: string[] = [];
  for (let i = 0; i < count; i++) parts.push(`h${((i * 2654435761) >>> 0).toString(36)}${i.toString(36)}.gen${i % 1009}.example\n`);
  return { category: 'generated', text: parts.join(''), lines: count };
}

/** Every UT1 `urls` line, with its category. */
export function ut1UrlLines(): { category: string; line: number; rule: string }[] {
  const rules: { category: string; line: number; rule: string }[] = [];
  for (const category of ut1Categories()) {
    const file = path.join(UT1, category, 'urls');
    if (!existsSync(file)) continue;
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((rule, index) => {
        if (rule.trim() !== '' && !rule.startsWith('#')) rules.push({ category, line: index + 1, rule });
      });
  }
  return rules;
}

function countLines(text: string): number {
  let lines = 0;
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) lines++;
  return lines;
}

/**
 * Requests drawn from the top-sites list by popularity (Zipf, s = 1, as web traffic
 * is: a few sites take most requests), with realistic paths; one in ten goes to a
 * real UT1 gambling domain, so blocks are part of the mix. Seeded: every run sees
 * the same stream. Hosts are fresh flat strings, as a request parser hands them over.
 */
export function topSitesTraffic(count: number): { hosts: string[]; paths: string[] } {
  const top = readFileSync(path.join(DATA, 'topsites/umbrella-top-100k.txt'), 'utf8').trim().split('\n');
  const gambling = readFileSync(path.join(UT1, 'gambling/domains'), 'utf8').trim().split('\n');
  const paths = [
    '/',
    '/index.html',
    '/search?q=bai+tap+toan+lop+5',
    '/news/2026/11/giao-duc-vung-cao.html',
    '/static/js/app.min.js?v=12',
    '/watch?v=dQw4w9WgXcQ',
  ];
  const cumulative = new Float64Array(top.length);
  let total = 0;
  for (let rank = 0; rank < top.length; rank++) cumulative[rank] = total += 1 / (rank + 1);
  let seed = 0x2545f491;
  const random = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const hosts: string[] = [];
  const pathList: string[] = [];
  for (let i = 0; i < count; i++) {
    if (i % 10 === 9) {
      hosts.push(gambling[Math.floor(random() * gambling.length)]!);
    } else {
      const target = random() * total;
      let low = 0;
      let high = top.length - 1;
      while (low < high) {
        const middle = (low + high) >> 1;
        if (cumulative[middle]! < target) low = middle + 1;
        else high = middle;
      }
      hosts.push(top[low]!);
    }
    pathList.push(paths[Math.floor(random() * paths.length)]!);
  }
  return { hosts: hosts.map((h) => (' ' + h).slice(1)), paths: pathList };
}

/** Every top-sites host once, in rank order: the uncached worst case (no repeats). */
export function topSitesHosts(): string[] {
  return readFileSync(path.join(DATA, 'topsites/umbrella-top-100k.txt'), 'utf8')
    .trim()
    .split('\n')
    .map((h) => new URL(`http://${h}/`).hostname);
}
