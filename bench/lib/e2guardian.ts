/**
 * e2guardian (Debian's package) as a bench rival for content inspection: one process
 * (its worker threads on one core, pinned by the caller), no upstream proxy (it
 * fetches from the origin itself), with a weighted phrase list made from lachan's own
 * shipped phrases and a naughtiness limit equal to the lachan profile's content_limit,
 * so both read the same page for the same words. Logging is off; the rest is Debian's
 * configuration, copied into a temporary folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

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

/** Writes the configuration under `dir` and starts e2guardian on `port`, pinned to `cpu`; resolves once it listens. */
export async function startE2guardian(
  dir: string,
  port: number,
  phrases: string,
  naughtinessLimit: number,
  cpu: number,
  waitForPort: (port: number, timeoutMs: number) => Promise<void>,
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
  writeFileSync(path.join(conf, 'lists/weightedphraselist'), phrases);
  writeFileSync(path.join(conf, 'lists/bannedphraselist'), '');
  writeFileSync(path.join(conf, 'lists/exceptionphraselist'), '');
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
