/**
 * Content inspection throughput (docs/contract.md §8).
 *
 *   npm run bench:content [rounds=9] [--base-dist OTHER/dist] [--rules DIR --profile NAME]
 *
 * Pages: the 600 dantri.com.vn articles of ../shared/data/vi-text, 20 to a page with
 * the markup, style and script a news site carries, about 110 KB each (the page size
 * of the e2guardian comparison in docs). Every page goes through a real inspector of
 * the shipped `thpt` profile (which blocks none of them, so every byte is read) in
 * 16 KiB writes, as the proxy will feed it:
 *   - plain:  UTF-8 body, read by the compiled page scan (src/content/page-scan.ts);
 *   - plain, strings: the same through the string path (TextDecoder, folding, automaton
 *     in JavaScript), which other charsets take;
 *   - gzip, br: the same pages gzip- and brotli-compressed (inflated in step, decoding.ts);
 * and, to see where the time goes, the stages alone on the plain pages:
 *   - compiled path: markup: the markup state machine over the bytes as latin1, text
 *     dropped; scan: the extracted text (as text/plain) through the compiled scan;
 *   - string path: decode: TextDecoder only; strip: decode + markup, text dropped;
 *     fold+match: the extracted text through the phrase scanner only.
 * MB per CPU-second counts page bytes (decoded size for gzip) per second of CPU time of
 * the whole process (all threads, zlib's included): the "one core" figure.
 * `--base-dist` (another checkout's `dist`, built) runs that build's inspector on the
 * plain, gzip and br pages in the same rounds, for an A/B in one process and minutes.
 * `--rules` and `--profile` read the pages with another rules folder and profile (by
 * default ./rules and `thpt`), both builds alike: e.g. the shipped phrase categories with
 * Debian's e2guardian lists added as one more (bench/lib/inspection-phase.ts makes such
 * a folder), a list too large for 16-bit automaton rows. The profile must have a
 * content_limit; pages it blocks are not read to the end (a note says how many).
 * Run from the repository root.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TextDecoder } from 'node:util';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { resolve } from 'node:path';
import { loadPolicy } from '../src/rules/loader.js';
import { ContentInspection } from '../src/content/inspector.js';
import { MarkupText, type TextSink } from '../src/content/markup.js';
import { contentProfileOf } from '../src/content/profile.js';

const DATA = '../shared/data';
const CHUNK = 16 * 1024;
const ARTICLES_PER_PAGE = 20;
const args = process.argv.slice(2);
const OPTIONS = ['--base-dist', '--rules', '--profile'];
/** The value after option `name`, if given. */
function option(name: string): string | undefined {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
}
const baseDist = option('--base-dist');
const rulesDir = option('--rules') ?? 'rules';
const profileId = option('--profile') ?? 'thpt';
const rounds = Number(args.find((a, i) => /^\d+$/.test(a) && !OPTIONS.includes(args[i - 1]!)) ?? 9);

/** Another build's inspector: its write and end may answer with a promise (builds before decoding in step). */
interface InspectStepLike {
  readonly verdict?: unknown;
}
interface InspectorLike {
  write(chunk: Buffer): InspectStepLike | Promise<InspectStepLike>;
  end(): InspectStepLike | Promise<InspectStepLike>;
  release(): void;
}
interface InspectionLike {
  begin(type: string, encoding: string | undefined): InspectorLike | null;
}

async function baseInspection(dist: string): Promise<InspectionLike> {
  const { loadPolicy: loadBase } = (await import(resolve(dist, 'src/rules/loader.js'))) as { loadPolicy(dir: string): Promise<unknown> };
  const { ContentInspection: Base } = (await import(resolve(dist, 'src/content/inspector.js'))) as {
    ContentInspection: { for(policy: unknown, profile: string): InspectionLike | null };
  };
  const inspection = Base.for(await loadBase(rulesDir), profileId);
  if (inspection === null) throw new Error(`${dist}: profile ${profileId} of ${rulesDir} has no content_limit`);
  return inspection;
}

function articles(): string[] {
  const text = readFileSync(join(DATA, 'vi-text/uts-unc-dantri/unc-news-600docs.txt'), 'utf8');
  return text
    .split(/^# doc_id = /mu)
    .slice(1)
    .map((doc) => {
      const lines = doc
        .split('\n')
        .slice(1)
        .filter((l) => !l.startsWith('#') && l.trim() !== '');
      return `<article class="news-item"><h2><a href="/tin/${lines.length}.htm" title="${lines[0]!.replace(/"/g, '')}">${lines[0]}</a></h2>\n${lines
        .slice(1)
        .map((l) => `<p class="body">${l}</p>`)
        .join('\n')}</article>`;
    });
}

const STYLE = `<style>${'.news-item h2 a{color:#222;font:600 18px/1.4 Arial,sans-serif}.menu li{display:inline-block;padding:4px 8px}\n'.repeat(40)}</style>`;
const SCRIPT = `<script>${'window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments)}if(a<b&&c>d){x="</div>"}\n'.repeat(100)}</script>`;
const NAV = `<nav><ul class="menu">${['Thời sự', 'Thế giới', 'Kinh doanh', 'Giải trí', 'Thể thao', 'Giáo dục', 'Sức khỏe'].map((m) => `<li><a href="/${m}">${m}</a></li>`).join('')}</ul></nav>`;

function pages(): Buffer[] {
  const all = articles();
  const out: Buffer[] = [];
  for (let i = 0; i < all.length; i += ARTICLES_PER_PAGE) {
    const html = `<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8"><title>Tin tức</title>${STYLE}${SCRIPT}</head><body>${NAV}<main>${all.slice(i, i + ARTICLES_PER_PAGE).join('\n')}</main><!-- footer -->${SCRIPT}</body></html>`;
    out.push(Buffer.from(html));
  }
  return out;
}

interface Timing {
  readonly wallMs: number;
  readonly cpuMs: number;
}

async function timed(run: () => Promise<void> | void): Promise<Timing> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  await run();
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { wallMs, cpuMs: (used.user + used.system) / 1000 };
}

/**
 * The machine is shared (load above the core count is common), so each stage is run
 * several times and the least CPU time is the figure: other processes can only add
 * to it. Wall time is shown beside it for the same run.
 */
function report(name: string, bytes: number, timings: readonly Timing[]): void {
  const best = [...timings].sort((a, b) => a.cpuMs - b.cpuMs)[0]!;
  const mb = bytes / 1e6;
  console.log(
    `${name.padEnd(11)} ${(mb / (best.cpuMs / 1000)).toFixed(0).padStart(4)} MB per CPU-second (${((best.cpuMs * 1e6) / (bytes / 1024) / 1e3).toFixed(1)} µs/KB), ` +
      `${(mb / (best.wallMs / 1000)).toFixed(0).padStart(4)} MB/s wall in that run`,
  );
}

async function main(): Promise<void> {
  const policy = await loadPolicy(rulesDir);
  const inspection = ContentInspection.for(policy, profileId);
  const stringPath = ContentInspection.for(policy, profileId, { compiledScan: false });
  const profile = contentProfileOf(policy, profileId);
  if (inspection === null || stringPath === null || profile === null) throw new Error(`profile ${profileId} of ${rulesDir} has no content_limit`);
  const table = profile.phrases.automaton.pageTable;
  const plain = pages();
  const gzipped = plain.map((p) => gzipSync(p));
  // Quality 5: what servers use for pages made per request (11, for static files, inflates alike).
  const brotli = plain.map((p) => brotliCompressSync(p, { params: { [constants.BROTLI_PARAM_QUALITY]: 5 } }));
  const base = baseDist === undefined ? null : await baseInspection(baseDist);
  const bytes = plain.reduce((n, p) => n + p.length, 0);
  const gzBytes = gzipped.reduce((n, p) => n + p.length, 0);
  console.log(
    `${plain.length} pages, ${(bytes / 1e6).toFixed(2)} MB (${(bytes / plain.length / 1024).toFixed(0)} KB a page; gzip ${(gzBytes / 1e6).toFixed(2)} MB, br ${(brotli.reduce((n, p) => n + p.length, 0) / 1e6).toFixed(2)} MB), ${profile.phrases.size} phrases (${rulesDir}, ${profileId}; automaton ${table.states} states × ${table.alphabetSize} symbols, ${8 * table.cellBytes}-bit rows), ${rounds} rounds, node ${process.version}`,
  );

  let verdicts = 0;
  const inspectAll = (bodies: readonly Buffer[], encoding: string | undefined, by = inspection, type = 'text/html; charset=utf-8'): void => {
    for (const body of bodies) {
      const inspector = by.begin(type, encoding)!;
      for (let at = 0; at < body.length; at += CHUNK) {
        const step = inspector.write(body.subarray(at, at + CHUNK));
        if (step.verdict) verdicts++;
      }
      if (inspector.end().verdict) verdicts++;
      inspector.release();
    }
  };
  const inspectAllBase = async (bodies: readonly Buffer[], encoding: string | undefined): Promise<void> => {
    for (const body of bodies) {
      const inspector = base!.begin('text/html; charset=utf-8', encoding)!;
      for (let at = 0; at < body.length; at += CHUNK) {
        const step = inspector.write(body.subarray(at, at + CHUNK));
        if ((step instanceof Promise ? await step : step).verdict) verdicts++;
      }
      const last = inspector.end();
      if ((last instanceof Promise ? await last : last).verdict) verdicts++;
      inspector.release();
    }
  };

  const extracted: string[] = [];
  const collect: TextSink = { append: (s, a, b) => void extracted.push(s.slice(a, b)), separate: () => void extracted.push(' ') };
  for (const body of plain) {
    const markup = new MarkupText(collect);
    markup.write(new TextDecoder('utf-8').decode(body));
    markup.end();
  }
  const text = extracted.join('');
  const textBody = [Buffer.from(text)];
  const none: TextSink = { append: () => undefined, separate: () => undefined };

  const stages: Record<string, Timing[]> = { plain: [], strings: [], gzip: [], br: [], markup: [], scan: [], decode: [], strip: [], 'fold+match': [] };
  const compressed = [
    ['gzip', gzipped],
    ['br', brotli],
  ] as const;
  inspectAll(plain, undefined); // warm-up
  for (const [coding, bodies] of compressed) inspectAll(bodies, coding);
  if (base !== null) for (const [coding, bodies] of [[undefined, plain], ...compressed] as const) await inspectAllBase(bodies, coding);
  for (let r = 0; r < rounds; r++) {
    stages['plain']!.push(await timed(() => inspectAll(plain, undefined)));
    stages['strings']!.push(await timed(() => inspectAll(plain, undefined, stringPath)));
    for (const [coding, bodies] of compressed) stages[coding]!.push(await timed(() => inspectAll(bodies, coding)));
    if (base !== null)
      for (const [name, coding, bodies] of [
        ['base plain', undefined, plain],
        ['base gzip', 'gzip', gzipped],
        ['base br', 'br', brotli],
      ] as const)
        (stages[name] ??= []).push(await timed(() => inspectAllBase(bodies, coding)));
    stages['markup']!.push(
      await timed(() => {
        for (const body of plain) {
          const markup = new MarkupText(none, true);
          for (let at = 0; at < body.length; at += CHUNK) markup.write(body.toString('latin1', at, Math.min(body.length, at + CHUNK)));
          markup.end();
        }
      }),
    );
    stages['scan']!.push(await timed(() => inspectAll(textBody, undefined, inspection, 'text/plain; charset=utf-8')));
    stages['decode']!.push(
      await timed(() => {
        for (const body of plain) {
          const decoder = new TextDecoder('utf-8');
          for (let at = 0; at < body.length; at += CHUNK) decoder.decode(body.subarray(at, at + CHUNK), { stream: true });
        }
      }),
    );
    stages['strip']!.push(
      await timed(() => {
        for (const body of plain) {
          const decoder = new TextDecoder('utf-8');
          const markup = new MarkupText(none);
          for (let at = 0; at < body.length; at += CHUNK) markup.write(decoder.decode(body.subarray(at, at + CHUNK), { stream: true }));
          markup.end();
        }
      }),
    );
    stages['fold+match']!.push(
      await timed(() => {
        const scanner = profile.scanner();
        scanner.append(text);
        scanner.finish();
      }),
    );
  }
  if (verdicts !== 0) console.log(`note: ${verdicts} verdicts fell; those pages were not read to the end`);
  report('plain', bytes, stages['plain']!);
  report('  strings', bytes, stages['strings']!);
  report('gzip', bytes, stages['gzip']!);
  report('br', bytes, stages['br']!);
  if (base !== null) {
    console.log(`the build in ${baseDist}, same rounds:`);
    for (const name of ['base plain', 'base gzip', 'base br']) report(`  ${name.slice(5)}`, bytes, stages[name]!);
  }
  console.log('compiled path, stages:');
  report('  markup', bytes, stages['markup']!);
  report('  scan', Buffer.byteLength(text), stages['scan']!);
  console.log('string path, stages:');
  report('  decode', bytes, stages['decode']!);
  report('  strip', bytes, stages['strip']!);
  report('  fold+match', Buffer.byteLength(text), stages['fold+match']!);
  console.log(`(scan and fold+match count the ${(Buffer.byteLength(text) / 1e6).toFixed(2)} MB of extracted text; the other lines count page bytes)`);
}

await main();
