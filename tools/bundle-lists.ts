/**
 * Rebuilds the bundled public lists of rules/bundled/ from local copies of their
 * upstream sources. Maintainers run it when they refresh the lists; a school never
 * needs to (schools that want fresher lists subscribe to them instead).
 *
 *   npm run lists:bundle -- [DATA_DIR]      # default: ../shared/data beside the repository
 *
 * Each upstream list goes through the importers of `lachan rules import` (so it is
 * canonicalised exactly as an import would be), loses the entries listed in
 * EXCLUDED below (false positives found on the top-100k sites, each with its
 * reason), is sorted, and is written gzip-compressed with a header that names its
 * source, licence and changes. rules/bundled/lists (file → category) is written too.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { importListSource, type ListFormat } from '../src/rules/importers.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const DATA = path.resolve(process.argv[2] ?? path.join(REPO, '../shared/data'));
const OUT = path.join(REPO, 'rules/bundled');
/** The repository refuses files of 4 MB or more; stay well under. */
const MAX_FILE_BYTES = 3.5 * 1024 * 1024;

interface Source {
  /** Base of the bundled file names: NAME.domains.gz, NAME.urls.gz. */
  readonly name: string;
  readonly category: string;
  readonly format: ListFormat;
  /** Path under DATA: a list file, or a UT1 category folder. */
  readonly path: string;
  readonly title: string;
  readonly origin: string;
  readonly licence: string;
}

const HOSTSVN = {
  origin: 'https://github.com/bigdargon/hostsVN (snapshot of 2026-06-26)',
  licence: 'MIT, Copyright (c) 2026 BigDargon (rules/bundled/LICENSE.hostsVN)',
};
const STEVENBLACK = {
  origin: 'https://github.com/StevenBlack/hosts, via cyb3rko/stevenblack-hosts-trimmed @ 979c684 (2026-06-26)',
  licence: 'MIT, Copyright (c) Steven Black (rules/bundled/LICENSE.StevenBlack)',
};
const UT1 = {
  origin: 'https://dsi.ut-capitole.fr/blacklists/ via olbat/ut1-blacklists @ 804da92 (2026-08-17)',
  licence: 'CC BY-SA 4.0, Université Toulouse Capitole, Fabrice Prigent (rules/bundled/LICENSE.UT1)',
};

const SOURCES: readonly Source[] = [
  { name: 'hostsvn-adult', category: 'adult', format: 'domains', path: 'hostsvn/extensions/adult/domain.txt', title: 'hostsVN extension adult', ...HOSTSVN },
  {
    name: 'stevenblack-porn',
    category: 'adult',
    format: 'domains',
    path: 'stevenblack/porn-only.domains.txt',
    title: 'StevenBlack hosts, porn-only extension',
    ...STEVENBLACK,
  },
  { name: 'ut1-adult', category: 'adult', format: 'ut1', path: 'ut1/adult', title: 'UT1 blacklists, category adult (urls only)', ...UT1 },
  {
    name: 'hostsvn-gambling',
    category: 'gambling',
    format: 'domains',
    path: 'hostsvn/extensions/gambling/domain.txt',
    title: 'hostsVN extension gambling',
    ...HOSTSVN,
  },
  {
    name: 'stevenblack-gambling',
    category: 'gambling',
    format: 'domains',
    path: 'stevenblack/gambling-only.domains.txt',
    title: 'StevenBlack hosts, gambling-only extension',
    ...STEVENBLACK,
  },
  { name: 'ut1-gambling', category: 'gambling', format: 'ut1', path: 'ut1/gambling', title: 'UT1 blacklists, category gambling', ...UT1 },
  { name: 'ut1-dating', category: 'dating', format: 'ut1', path: 'ut1/dating', title: 'UT1 blacklists, category dating', ...UT1 },
  { name: 'ut1-drogue', category: 'drugs', format: 'ut1', path: 'ut1/drogue', title: 'UT1 blacklists, category drogue (drugs)', ...UT1 },
  { name: 'ut1-agressif', category: 'violence', format: 'ut1', path: 'ut1/agressif', title: 'UT1 blacklists, category agressif (violence, hate)', ...UT1 },
  { name: 'ut1-vpn', category: 'vpn', format: 'ut1', path: 'ut1/vpn', title: 'UT1 blacklists, category vpn', ...UT1 },
  {
    name: 'ut1-redirector',
    category: 'vpn',
    format: 'ut1',
    path: 'ut1/redirector',
    title: 'UT1 blacklists, category redirector (anonymising proxies, filter bypass)',
    ...UT1,
  },
  {
    name: 'ut1-residential-proxies',
    category: 'vpn',
    format: 'ut1',
    path: 'ut1/residential-proxies',
    title: 'UT1 blacklists, category residential-proxies',
    ...UT1,
  },
  { name: 'ut1-doh', category: 'doh', format: 'ut1', path: 'ut1/doh', title: 'UT1 blacklists, category doh (DNS over HTTPS)', ...UT1 },
];

/**
 * Upstream entries not bundled: each blocked a popular site that is not what its
 * category says (found by running the top-100k sites through the bundled lists).
 * Only the named entry goes; more specific entries under it stay.
 */
const EXCLUDED: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  'hostsvn-adult': {
    'redbubble.com': 'print-on-demand shop',
    'dmm.com': 'DMM general portal (games, e-books); the adult site is dmm.co.jp, which stays',
  },
  'stevenblack-porn': {
    'yandex.by': 'search engine',
    'kinopoisk.ru': 'film database',
    'evt.mxplay.com': 'MX Player app telemetry',
    'm.vk.com': 'social network (VK), a social-networks matter',
    'my.mail.ru': 'social network (Mail.ru), a social-networks matter',
  },
  'ut1-gambling': {
    'sofascore.com': 'sports results',
  },
  'ut1-dating': {
    'eventbrite.com': 'event tickets',
    'timeout.com': 'city guide magazine',
    'boomplay.com': 'music streaming',
  },
  'ut1-doh': {
    'apple-dns.net': 'names of Apple services (iCloud contacts, mail); Private Relay stays blocked by mask.icloud.com',
    'yahoodns.net': 'Yahoo service names',
    'token.safebrowsing.apple': 'Safari Safe Browsing',
    'proxy.safebrowsing.apple': 'Safari Safe Browsing',
  },
  'ut1-vpn': {
    'salesforceliveagent.com': 'Salesforce customer chat used by many sites',
  },
  'ut1-redirector': {
    'checkpoint.com': 'Check Point security products and updates',
    'spoc.norton.com': 'Norton antivirus service',
    'mus.cisco.com': 'Cisco security service',
  },
};

function header(source: Source, kind: 'domains' | 'urls', entries: number, excluded: readonly string[]): string {
  const lines = [
    `# ${source.title} (${kind})`,
    `# Source: ${source.origin}, file ${source.path}`,
    `# Licence: ${source.licence}`,
    `# Bundled with lachan for category "${source.category}" (rules/bundled/lists).`,
    `# Changes: canonicalised (lower case, punycode), duplicates removed, sorted; ${entries} entries.`,
    '# Each line blocks that host and every subdomain (lachan `domains` semantics).',
  ];
  if (kind === 'domains' && excluded.length > 0) lines.push(`# Left out as false positives (rules/bundled/README.md): ${excluded.join(', ')}`);
  lines.push("# Generated by tools/bundle-lists.ts; edit the school's own files in rules/categories/ instead.");
  return `${lines.join('\n')}\n`;
}

function writeList(file: string, text: string): number {
  const compressed = gzipSync(text, { level: 9 });
  if (compressed.length > MAX_FILE_BYTES)
    throw new Error(`${file}: ${compressed.length} bytes compressed, over the ${MAX_FILE_BYTES}-byte limit: split the list`);
  writeFileSync(path.join(OUT, file), compressed);
  return compressed.length;
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const manifest: string[] = [
    '# Bundled public lists: one list a line, FILE CATEGORY.',
    '# Each file joins the rules of that category (rules/categories/<category>/) wherever',
    '# a profile blocks it. Delete a line to stop using that list; see README.md here.',
    '# Generated by tools/bundle-lists.ts.',
  ];
  for (const source of SOURCES) {
    const result = await importListSource(source.format, path.join(DATA, source.path));
    const excludedHere = EXCLUDED[source.name] ?? {};
    const missing = Object.keys(excludedHere).filter((host) => !result.domains.includes(host));
    if (missing.length > 0) throw new Error(`${source.name}: exclusions not in the list any more: ${missing.join(', ')}`);
    const domains = result.domains.filter((host) => !(host in excludedHere)).sort();
    const urls = [...result.urls].sort();
    for (const [kind, entries] of [
      ['domains', domains],
      ['urls', urls],
    ] as const) {
      if (entries.length === 0) continue;
      const file = `${source.name}.${kind}.gz`;
      const bytes = writeList(file, `${header(source, kind, entries.length, Object.keys(excludedHere))}${entries.join('\n')}\n`);
      manifest.push(`${file.padEnd(40)} ${source.category}`);
      process.stdout.write(`${file}: ${entries.length} entries, ${bytes} bytes\n`);
    }
  }
  writeFileSync(path.join(OUT, 'lists'), `${manifest.join('\n')}\n`);
}

await main();
