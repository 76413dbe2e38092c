/**
 * e2guardian (Debian's package) as a bench rival for content inspection: one process
 * (its worker threads on one core, pinned by the caller), no upstream proxy (it
 * fetches from the origin itself), with a weighted phrase list made from lachan's own
 * shipped phrases and a naughtiness limit equal to the lachan profile's content_limit,
 * so both read the same page for the same words. Logging is off; the rest is Debian's
 * configuration, copied into a temporary folder.
 *
 * Two phrase set-ups (E2guardianLists): `lachan` holds only lachan's phrases, the fair
 * like-for-like; `debian` keeps the weighted, banned and exception phrase lists Debian
 * installs and enables (in Debian 12's 5.3.5, 6,900 weighted phrases from 32 lists:
 * pornography, nudism, bad words and good phrases in a dozen languages, proxies,
 * malware, warez; 10 banned or exception) and adds lachan's, which is e2guardian as a
 * school would find it after `apt-get install e2guardian`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PhraseSetBuilder } from '../../src/policy/phrases.js';

export const E2GUARDIAN = '/usr/sbin/e2guardian';
const DEBIAN_CONFIG = '/etc/e2guardian';

export function haveE2guardian(): boolean {
  return existsSync(E2GUARDIAN) && existsSync(path.join(DEBIAN_CONFIG, 'e2guardian.conf'));
}

/**
 * lachan's `<weight> <phrase>` lines as e2guardian weighted phrases: `< phrase ><weight>`
 * (spaces inside the brackets make it a whole-word match, as lachan's phrases are);
 * a `*` end of lachan's becomes an open end.
 */
export function e2guardianPhrases(phraseFiles: readonly string[]): { text: string; count: number } {
  const lines: string[] = [];
  for (const file of phraseFiles) {
    for (const raw of readFileSync(file, 'utf8').split('\n')) {
      const match = /^([+-]?\d+)\s+(\S.*)$/u.exec(raw.trim());
      if (match === null) continue;
      let phrase = match[2]!.trim().toLowerCase();
      const open = { start: phrase.startsWith('*'), end: phrase.endsWith('*') };
      phrase = phrase.replace(/^\*|\*$/gu, '');
      lines.push(`<${open.start ? '' : ' '}${phrase}${open.end ? '' : ' '}><${Number(match[1])}>`);
    }
  }
  return { text: `${lines.join('\n')}\n`, count: lines.length };
}

/** Which phrase lists e2guardian reads besides lachan's (see the header). */
export type E2guardianLists = 'lachan' | 'debian';

/** Writes the configuration under `dir` and starts e2guardian on `port`, pinned to `cpu`; resolves once it listens. */
export async function startE2guardian(
  dir: string,
  port: number,
  phrases: string,
  naughtinessLimit: number,
  cpu: number,
  waitForPort: (port: number, timeoutMs: number) => Promise<void>,
  lists: E2guardianLists = 'lachan',
): Promise<ChildProcess> {
  const conf = path.join(dir, 'conf');
  cpSync(DEBIAN_CONFIG, conf, { recursive: true });
  // Every path in the copied files points into the copy.
  const rewrite = (folder: string): void => {
    for (const entry of readdirSync(folder)) {
      const file = path.join(folder, entry);
      if (statSync(file).isDirectory()) rewrite(file);
      else {
        const text = readFileSync(file, 'utf8');
        if (text.includes(DEBIAN_CONFIG)) writeFileSync(file, text.replaceAll(DEBIAN_CONFIG, conf));
      }
    }
  };
  rewrite(conf);
  // e2guardian lowercases a phrase list's `.Include<path>`, so Debian's lists are included
  // from where Debian put them, not from the copy (the temporary folder's name has capitals).
  const original = (list: string): string => (lists === 'debian' ? readFileSync(path.join(DEBIAN_CONFIG, 'lists', list), 'utf8') : '');
  writeFileSync(path.join(conf, 'lists/weightedphraselist'), `${original('weightedphraselist')}\n${phrases}`);
  writeFileSync(path.join(conf, 'lists/bannedphraselist'), original('bannedphraselist'));
  writeFileSync(path.join(conf, 'lists/exceptionphraselist'), original('exceptionphraselist'));
  const main = path.join(conf, 'e2guardian.conf');
  writeFileSync(
    main,
    `${readFileSync(main, 'utf8')
      .replace(/^filterports = .*$/mu, `filterports = ${port}`)
      .replace(/^filterip =.*$/mu, 'filterip = 127.0.0.1')
      .replace(/^transparenthttpsport = .*$/mu, '') // would bind 8443: another run, or another helper's e2guardian, may hold it
      .replace(/^loglevel = .*$/mu, 'loglevel = 0')
      .replace(/^nodaemon = .*$/mu, 'nodaemon = on')
      .replace(/^nologger = .*$/mu, 'nologger = on')}\npidfilename = '${path.join(dir, 'e2guardian.pid')}'\nloglocation = '${path.join(dir, 'access.log')}'\n`,
  );
  const group = path.join(conf, 'e2guardianf1.conf');
  writeFileSync(group, readFileSync(group, 'utf8').replace(/^naughtynesslimit = .*$/mu, `naughtynesslimit = ${naughtinessLimit}`));
  chmodSync(dir, 0o777); // it drops root for its own user, which must read the copy and write its pid
  const child = spawn('taskset', ['-c', String(cpu), E2GUARDIAN, '-N', '-c', main], { stdio: ['ignore', 'ignore', 'pipe'] });
  let errors = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    errors += chunk.toString();
  });
  try {
    await waitForPort(port, 20_000);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`e2guardian did not start: ${errors.trim().slice(-500)}`, { cause: error });
  }
  return child;
}

/**
 * The weighted phrases Debian's e2guardian enables, as a lachan `phrases` file, so that
 * lachan can be measured reading a page against as many phrases as e2guardian as
 * installed. The reading cost is the point, not the verdicts: a combination
 * (`<a>,<b><w>`) becomes its parts, each with the whole weight (lachan has no
 * combinations); `< word >` is a whole word, an open side becomes a `*` end; lists not
 * in UTF-8 are read as windows-1252 (their Western European words come out right).
 * Lines lachan would refuse (too short for a wildcard, no letters) are left out, and
 * each phrase comes once.
 */
/** The lists Debian's weighted phrase list includes, and the weighted phrases (lines) in them. */
export function debianWeightedLists(): { lists: number; phrases: number } {
  const includes = [...readFileSync(path.join(DEBIAN_CONFIG, 'lists/weightedphraselist'), 'utf8').matchAll(/^\.Include<([^>]+)>/gmu)];
  let phrases = 0;
  for (const [, file] of includes)
    phrases += readFileSync(file!, 'latin1')
      .split('\n')
      .filter((line) => line.trim().startsWith('<')).length;
  return { lists: includes.length, phrases };
}

export function debianPhrasesForLachan(accepts: (line: string) => boolean): { text: string; count: number } {
  const lines: string[] = [];
  const seen = new Set<string>();
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const western = new TextDecoder('windows-1252');
  const includes = readFileSync(path.join(DEBIAN_CONFIG, 'lists/weightedphraselist'), 'utf8').matchAll(/^\.Include<([^>]+)>/gmu);
  for (const [, file] of includes) {
    const bytes = readFileSync(file!);
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      text = western.decode(bytes);
    }
    for (const raw of text.split('\n')) {
      const entry = /^((?:<[^<>]+>,?)+)<(-?\d+)>\s*$/u.exec(raw.trim());
      if (entry === null) continue;
      const weight = Math.max(-1000, Math.min(1000, Number(entry[2])));
      if (weight === 0) continue;
      for (const [, term] of entry[1]!.matchAll(/<([^<>]+)>/gu)) {
        const word = term!.trim().toLowerCase();
        if (word === '') continue;
        const phrase = `${term!.startsWith(' ') ? '' : '*'}${word}${term!.endsWith(' ') ? '' : '*'}`;
        const line = `${weight} ${phrase}`;
        if (seen.has(phrase) || !accepts(line)) continue;
        seen.add(phrase);
        lines.push(line);
      }
    }
  }
  return { text: `${lines.join('\n')}\n`, count: lines.length };
}

/**
 * Writes the phrases of debianPhrasesForLachan, less the lines lachan refuses, into rules
 * folder `rulesDir` as category `category`; returns how many.
 */
export function writeDebianCategory(rulesDir: string, category: string): number {
  const check = new PhraseSetBuilder();
  const debian = debianPhrasesForLachan((line) => check.addLine(line, 0, 0, 1) === null);
  mkdirSync(path.join(rulesDir, 'categories', category), { recursive: true });
  writeFileSync(path.join(rulesDir, 'categories', category, 'phrases'), debian.text);
  return debian.count;
}
