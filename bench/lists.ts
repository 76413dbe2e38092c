/**
 * What a school downloads to follow a subscribed list through the district collector:
 * the whole list (first time, or a version the collector no longer keeps) against the
 * delta of a day's change and of a week's. Sizes are the bodies the collector sends
 * (src/central/lists-mirror.ts), raw and gzip (gateways ask for gzip).
 *
 *   npm run bench:lists
 *
 * Churn: each day 1 % of the entries, picked with a fixed seed, leave the list and as
 * many new ones join (about what hostsVN and Hagezi publish per day).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { applyDelta, diffVersions, entriesOf, listVersionOf, parseDownload } from '../src/lists/entries.js';
import type { ListFormat } from '../src/rules/importers.js';

const DATA = path.resolve(import.meta.dirname, '../../../shared/data');
const SOURCES: { name: string; file: string; format: ListFormat }[] = [
  { name: 'hostsVN gambling (hosts)', file: 'hostsvn/extensions/gambling/hosts', format: 'hosts' },
  { name: 'Hagezi gambling mini (adblock)', file: 'hagezi/adblock/gambling.mini.txt', format: 'adblock' },
  { name: 'UT1 gambling (domains)', file: 'ut1/gambling/domains', format: 'ut1' },
];

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function churn(entries: readonly string[], day: number, rate: number, next: () => number): string[] {
  const count = Math.round(entries.length * rate);
  const kept = [...entries];
  for (let i = 0; i < count; i++) kept.splice(Math.floor(next() * kept.length), 1);
  for (let i = 0; i < count; i++) kept.push(`moi-${day}-${i}-${Math.floor(next() * 1e9).toString(36)}.vn`);
  return kept;
}

const kb = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;

console.log('| list | entries | full (raw / gzip) | 1-day delta (raw / gzip) | 7-day delta (raw / gzip) | delta ÷ full (gzip, 1 day) | parse + diff ms |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const source of SOURCES) {
  const text = readFileSync(path.join(DATA, source.file), 'utf8');
  const started = performance.now();
  const day0 = parseDownload(source.format, text);
  const next = random(20261204);
  let entries = entriesOf(day0.text);
  const versions = [day0];
  for (let day = 1; day <= 7; day++) {
    entries = churn(entries, day, 0.01, next);
    versions.push(listVersionOf(entries));
  }
  const oneDay = diffVersions(day0.text, versions[1]!.text);
  const week = diffVersions(day0.text, versions[7]!.text);
  const elapsed = performance.now() - started;
  // The gateway's side: the delta rebuilds exactly the collector's version.
  if (applyDelta(day0.text, week).version !== versions[7]!.version) throw new Error('delta does not rebuild the version');
  const full = versions[1]!.text;
  const size = (t: string): [number, number] => [Buffer.byteLength(t), gzipSync(t).length];
  const [fullRaw, fullGz] = size(full);
  const [dayRaw, dayGz] = size(oneDay);
  const [weekRaw, weekGz] = size(week);
  console.log(
    `| ${source.name} | ${day0.entries} | ${kb(fullRaw)} / ${kb(fullGz)} | ${kb(dayRaw)} / ${kb(dayGz)} | ${kb(weekRaw)} / ${kb(weekGz)} | ${((dayGz / fullGz) * 100).toFixed(1)} % | ${elapsed.toFixed(0)} |`,
  );
}
