/**
 * The streaming inspector stage by stage (docs/contract.md §8), with a small rules
 * folder: phrases and markup cut at every byte, charsets, content codings, the held
 * prefix and the late verdict, and the responses it must leave alone.
 */
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicy } from '../src/rules/loader.js';
import { ContentInspection } from '../src/content/inspector.js';
import { MarkupText } from '../src/content/markup.js';
import type { Policy } from '../src/policy/engine.js';
import { encodeWindows1258, makeRulesDir, removeDir, runInspection, type ServedPage } from './harness/index.js';

const POLICY = `version: 1
default_profile: young
profiles:
  young:
    name: "Tiểu học"
    block_categories: [gambling, adult]
    content_limit: 60
  older:
    name: "THPT"
    block_categories: [gambling, adult]
    content_limit: 150
  staff:
    name: "Giáo viên"
    block_categories: [gambling]
`;
const GAMBLING_PHRASES = `# test phrases
60 cá độ bóng đá
30 nhà cái
30 soi kèo
-40 công an
`;
const ADULT_PHRASES = `60 phim người lớn
`;

let dir: string;
let policy: Policy;
let young: ContentInspection;
/** young with nothing held back: a compressed body is inflated chunk by chunk. */
let streaming: ContentInspection;
beforeAll(async () => {
  dir = makeRulesDir({
    'policy.yaml': POLICY,
    'categories/gambling/domains': 'example-bet.com\n',
    'categories/gambling/phrases': GAMBLING_PHRASES,
    'categories/adult/phrases': ADULT_PHRASES,
  });
  policy = await loadPolicy(dir);
  young = ContentInspection.for(policy, 'young')!;
  streaming = ContentInspection.for(policy, 'young', { holdBackBytes: 0 })!;
});
afterAll(() => removeDir(dir));

function html(body: string, head = '<meta charset="utf-8">'): string {
  return `<!DOCTYPE html><html><head>${head}<title>Trang thử</title></head><body>${body}</body></html>`;
}

function page(body: Buffer | string, contentType = 'text/html; charset=utf-8', contentEncoding?: string): ServedPage {
  return { variant: 'test', contentType, contentEncoding, body: typeof body === 'string' ? Buffer.from(body) : body };
}

/**
 * Runs `body` split in two at every byte offset, the second part written and then the
 * end, or handed over with the end (as the proxy does with a response's last bytes),
 * and returns the verdict categories seen.
 */
function verdictsAtEverySplit(inspection: ContentInspection, served: ServedPage): Set<string> {
  const seen = new Set<string>();
  for (let cut = 0; cut <= served.body.length; cut++) {
    for (const withTheEnd of [false, true]) {
      const inspector = inspection.begin(served.contentType, served.contentEncoding)!;
      const first = inspector.write(served.body.subarray(0, cut));
      const rest = served.body.subarray(cut);
      const second = first.verdict || withTheEnd ? first : inspector.write(rest);
      const last = second.verdict ? second : inspector.end(withTheEnd ? rest : undefined);
      seen.add(last.verdict?.category ?? '-');
    }
  }
  return seen;
}

describe('profiles', () => {
  it('inspects only profiles with a content_limit', () => {
    expect(ContentInspection.for(policy, 'staff')).toBeNull();
    expect(ContentInspection.for(policy, 'older')!.profile.limit).toBe(150);
    expect(ContentInspection.for(policy, 'nobody')).toBeNull();
  });

  it('leaves images, downloads and unknown codings alone', () => {
    expect(young.begin('image/jpeg', undefined)).toBeNull();
    expect(young.begin('application/octet-stream', undefined)).toBeNull();
    expect(young.begin('text/html', 'zstd')).toBeNull();
    expect(young.begin('text/plain', undefined, { 'content-disposition': 'attachment; filename="a.txt"' })).toBeNull();
    expect(young.begin('application/xhtml+xml; charset=utf-8', 'gzip')).not.toBeNull();
  });
});

describe('scoring', () => {
  it('sums distinct phrases only, counts negative context, and blocks at the limit', async () => {
    const once = runInspection(young, page(html('<p>Soi kèo nhà cái hôm nay</p>')));
    expect(once.verdict).toMatchObject({ category: 'gambling', score: 60, limit: 60, reason: 'score', title: 'Trang thử' });
    const repeated = runInspection(young, page(html('<p>nhà cái nhà cái nhà cái nhà cái</p>')));
    expect(repeated.verdict).toBeNull();
    const news = runInspection(young, page(html('<p>Công an triệt phá đường dây cá độ bóng đá.</p>')));
    expect(news.verdict).toBeNull();
    expect(news.scores![policy.rules.categoryNames.indexOf('gambling')]).toBe(20);
    const site = runInspection(young, page(html('<p>Công an không bắt được: cá độ bóng đá, soi kèo, nhà cái.</p>')));
    expect(site.verdict).toMatchObject({ category: 'gambling', score: 80 });
  });

  it('matches without diacritics, in NFD and in upper case, but not with other diacritics', async () => {
    for (const text of ['ca do bong da', 'CÁ ĐỘ BÓNG ĐÁ', 'cá độ bóng đá'.normalize('NFD')]) {
      expect(runInspection(young, page(html(`<p>${text}</p>`))).verdict?.category).toBe('gambling');
    }
    expect(runInspection(young, page(html('<p>cà đồ bông đà</p>'))).verdict).toBeNull();
  });

  it('blocks on an adult rating label when the profile blocks adult', async () => {
    const labelled = html('<p>Xin chào</p>', '<meta charset="utf-8"><meta content="RTA-5042-1996-1400-1577-RTA" name="rating">');
    expect(runInspection(young, page(labelled)).verdict).toMatchObject({ category: 'adult', reason: 'rating' });
    expect(runInspection(young, page(html('<p>Xin chào</p>', '<meta name="rating" content="general">'))).verdict).toBeNull();
  });
});

describe('chunk boundaries', () => {
  it('finds a phrase cut at any byte, in UTF-8 and in NFD', async () => {
    expect(verdictsAtEverySplit(young, page(html('<p>Đây là trang cá độ bóng đá</p>')))).toEqual(new Set(['gambling']));
    expect(verdictsAtEverySplit(young, page(html('<p>Đây là trang cá độ bóng đá</p>').normalize('NFD')))).toEqual(new Set(['gambling']));
  });

  it('reads entities and ignores script, style, comments and attributes at any cut', async () => {
    const entities = html('<p>c&aacute; &#273;&#7897; b&#xF3;ng &#273;&aacute;</p>');
    expect(verdictsAtEverySplit(young, page(entities))).toEqual(new Set(['gambling']));
    const hidden = html(
      '<script>var a = "cá độ bóng đá </p>"; if (a < b) {}</script><style>p{} /* cá độ bóng đá */</style><!-- cá độ bóng đá --><img alt="cá độ bóng đá"><p>Trang nấu ăn</p>',
    );
    expect(verdictsAtEverySplit(young, page(hidden))).toEqual(new Set(['-']));
  });

  it('reads text after a script that ends at any cut', async () => {
    const after = html('<SCRIPT type="text/javascript">x = 1 < 2;</SCRIPT ><p>cá độ bóng đá</p>');
    expect(verdictsAtEverySplit(young, page(after))).toEqual(new Set(['gambling']));
  });

  it('decodes gzip, deflate (wrapped and raw) and br cut at any byte', async () => {
    const body = html('<p>Trang cá độ bóng đá</p>');
    for (const [coding, bytes] of [
      ['gzip', zlib.gzipSync(body)],
      ['deflate', zlib.deflateSync(body)],
      ['deflate', zlib.deflateRawSync(body)],
      ['br', zlib.brotliCompressSync(body)],
    ] as const) {
      expect(verdictsAtEverySplit(young, page(bytes, 'text/html', coding))).toEqual(new Set(['gambling']));
      // Nothing held back: every chunk is inflated as it comes, through a stream.
      expect(verdictsAtEverySplit(streaming, page(bytes, 'text/html', coding))).toEqual(new Set(['gambling']));
    }
  });

  it('passes a body whose coding is broken, unread', async () => {
    const run = runInspection(young, page(Buffer.from('not gzip at all, cá độ bóng đá'), 'text/html', 'gzip'));
    expect(run.verdict).toBeNull();
    expect(run.passed.toString()).toBe('not gzip at all, cá độ bóng đá');
    const whole = young.begin('text/html', 'gzip')!.end(Buffer.from('not gzip at all, cá độ bóng đá'));
    expect(whole.verdict).toBeUndefined();
    expect(Buffer.concat(whole.pass).toString()).toBe('not gzip at all, cá độ bóng đá');
  });

  it('reads a compressed body cut short as far as it goes, whole or in pieces', () => {
    // Varied text: a few KB compressed, so the truncated end leaves most of the page decodable.
    const words = ['lớp', 'em', 'học', 'bài', 'sông', 'núi', 'trường', 'vườn', 'hoa', 'bạn', 'cô', 'giáo', 'sách', 'vở', 'mưa', 'nắng'];
    const lines = Array.from(
      { length: 300 },
      (_, i) => `<p>${Array.from({ length: 8 }, (_, k) => words[(i * 7 + k * k * 13 + ((i * k) % 11)) % words.length]).join(' ')} ${i}</p>`,
    );
    const body = html(`<p>Trang cá độ bóng đá</p>${lines.join('')}`);
    for (const [coding, bytes] of [
      ['gzip', zlib.gzipSync(body)],
      ['deflate', zlib.deflateRawSync(body)],
      ['br', zlib.brotliCompressSync(body)],
    ] as const) {
      expect(bytes.length, coding).toBeLessThan(4096);
      const cut = bytes.subarray(0, bytes.length - 40);
      expect(young.begin('text/html', coding)!.end(cut).verdict?.category, `${coding} whole`).toBe('gambling');
      const inPieces = streaming.begin('text/html', coding)!;
      let verdict: string | undefined;
      for (let at = 0; at < cut.length && verdict === undefined; at += 100) verdict = inPieces.write(cut.subarray(at, at + 100)).verdict?.category;
      expect(verdict ?? inPieces.end().verdict?.category, `${coding} in pieces`).toBe('gambling');
    }
  });

  // A compression bomb: 64 MiB of spaces (which a browser collapses) after the page's text.
  const bomb = (text: string): Buffer => Buffer.concat([Buffer.from(html(`<p>${text}</p>`)), Buffer.alloc(64 * 1024 * 1024, 0x20)]);

  it('reads a gzip or deflate bomb handed over in one chunk up to the read limit', () => {
    const body = bomb('Trang cá độ bóng đá');
    for (const [coding, bytes] of [
      ['gzip', zlib.gzipSync(body)],
      ['deflate', zlib.deflateSync(body)],
    ] as const) {
      // In pieces (a stream), and whole with the end (one call, then a stream when it is too much).
      const inspector = young.begin('text/html', coding)!;
      const verdict = inspector.write(bytes).verdict ?? inspector.end().verdict;
      expect(verdict?.category, coding).toBe('gambling');
      expect(young.begin('text/html', coding)!.end(bytes).verdict?.category, `${coding} whole`).toBe('gambling');
    }
  });

  it('passes a brotli bomb unread, as sent: its few bytes inflate past the read limit at once (docs/contract.md §8)', () => {
    // The harmful text comes first: read, it would block. Unread is the contract for a brotli bomb.
    const body = zlib.brotliCompressSync(bomb('Trang cá độ bóng đá'), { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } });
    expect(body.length).toBeLessThan(4096);
    const run = runInspection(young, page(body, 'text/html', 'br'), body.length);
    expect(run.verdict).toBeNull();
    expect(run.passed.equals(body)).toBe(true);
    // The same text without the bomb is blocked.
    expect(runInspection(young, page(zlib.brotliCompressSync(html('<p>Trang cá độ bóng đá</p>')), 'text/html', 'br')).verdict?.category).toBe('gambling');
  });
});

describe('responses read side by side', () => {
  it('keeps each page to itself: two pages cut at every byte and read in turn get their own verdicts', () => {
    const betting = Buffer.from(html('<p>Trang cá độ bóng đá của nhà cái uy tín</p>'));
    const lesson = Buffer.from(html('<p>Hôm nay chúng em học về dòng sông quê hương</p>'));
    // Released inspectors hand their scanners to the next response: reuse must not carry scores over.
    for (let round = 0; round < 3; round++) {
      const bet = young.begin('text/html; charset=utf-8', undefined)!;
      const clean = young.begin('text/html; charset=utf-8', undefined)!;
      let betVerdict = undefined as string | undefined;
      let cleanVerdict = undefined as string | undefined;
      for (let at = 0; at < Math.max(betting.length, lesson.length); at++) {
        if (at < betting.length && betVerdict === undefined) betVerdict = bet.write(betting.subarray(at, at + 1)).verdict?.category;
        if (at < lesson.length) cleanVerdict ??= clean.write(lesson.subarray(at, at + 1)).verdict?.category;
      }
      betVerdict ??= bet.end().verdict?.category;
      const cleanEnd = clean.end();
      cleanVerdict ??= cleanEnd.verdict?.category;
      expect(betVerdict).toBe('gambling');
      expect(cleanVerdict).toBeUndefined();
      expect(Buffer.concat(cleanEnd.pass).toString()).toBe(lesson.toString());
      bet.release();
      clean.release();
    }
  });

  it('does not let a character cut by the end of one body reach the next', () => {
    const cut = young.begin('text/plain; charset=utf-8', undefined)!;
    cut.write(Buffer.concat([Buffer.from('xin chào '), Buffer.from('ộ').subarray(0, 2)]));
    cut.end();
    cut.release();
    // Had the two bytes stayed in the shared decoder, `\x99` would complete `ộ` and glue it to `soi`.
    const next = young.begin('text/plain; charset=utf-8', undefined)!;
    next.write(Buffer.concat([Buffer.from([0x99]), Buffer.from('soi kèo, nhà cái')]));
    expect(next.end().verdict?.category).toBe('gambling');
    expect(next.scores[policy.rules.categoryNames.indexOf('gambling')]).toBe(60);
  });
});

describe('charsets', () => {
  const text = '<p>Trang cá độ bóng đá</p>';

  it('reads windows-1258 declared in the header or a meta tag, at any cut', async () => {
    expect(verdictsAtEverySplit(young, page(encodeWindows1258(html(text, '')), 'text/html; charset=windows-1258'))).toEqual(new Set(['gambling']));
    const meta = html(text, '<meta http-equiv="Content-Type" content="text/html; charset=windows-1258">');
    expect(verdictsAtEverySplit(young, page(encodeWindows1258(meta), 'text/html'))).toEqual(new Set(['gambling']));
    // Read as UTF-8, windows-1258 bytes are not the phrase: the declaration matters.
    expect(runInspection(young, page(encodeWindows1258(html(text, '')), 'text/html')).verdict).toBeNull();
  });

  it('reads UTF-16 by its byte order mark, and windows-1252 English', async () => {
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(html(text, ''), 'utf16le')]);
    expect(verdictsAtEverySplit(young, page(utf16, 'text/html'))).toEqual(new Set(['gambling']));
    const adult = Buffer.from(html('<p>Phim ngu\u00f4\u0300i l\u01a1\u0301n</p>', '<meta charset="windows-1252">'), 'latin1');
    // windows-1252 has no ơ: this page cannot say the phrase, and must not crash either.
    expect(runInspection(young, page(adult, 'text/html')).verdict).toBeNull();
    const english = Buffer.from(html('<p>Caf\u00e9 phim người lớn</p>'));
    expect(runInspection(young, page(english, 'text/html; charset=utf-8')).verdict?.category).toBe('adult');
  });

  it('reads text/plain without markup', async () => {
    expect(runInspection(young, page('soi kèo <b>nhà cái</b>', 'text/plain')).verdict?.category).toBe('gambling');
  });
});

describe('holding back', () => {
  const filler = '<p>Trường em có vườn hoa đẹp. </p>'.repeat(3000); // about 100 KB

  it('holds back the prefix and sends nothing of a page blocked within it', async () => {
    const inspection = ContentInspection.for(policy, 'young', { holdBackBytes: 64 * 1024 })!;
    const run = runInspection(inspection, page(html(`<p>cá độ bóng đá</p>${filler}`)), 4096);
    expect(run.verdict?.category).toBe('gambling');
    expect(run.passedBeforeVerdict).toBe(0);
  });

  it('sends a clean page whole, the prefix once it is full', async () => {
    const inspection = ContentInspection.for(policy, 'young', { holdBackBytes: 16 * 1024 })!;
    const body = html(filler);
    const inspector = inspection.begin('text/html', undefined)!;
    const first = inspector.write(Buffer.from(body).subarray(0, 8192));
    expect(first.pass.length).toBe(0);
    const second = inspector.write(Buffer.from(body).subarray(8192, 20_000));
    expect(Buffer.concat(second.pass).length).toBe(20_000);
    const rest = inspector.write(Buffer.from(body).subarray(20_000));
    const end = inspector.end();
    expect(Buffer.concat([...second.pass, ...rest.pass, ...end.pass]).toString()).toBe(body);
  });

  it('ends a page that crosses the limit past the prefix', async () => {
    const inspection = ContentInspection.for(policy, 'young', { holdBackBytes: 16 * 1024 })!;
    const body = html(`${filler}<p>cá độ bóng đá</p>${filler}`);
    const run = runInspection(inspection, page(body), 4096);
    expect(run.verdict?.category).toBe('gambling');
    expect(run.passedBeforeVerdict).toBeGreaterThan(16 * 1024);
    expect(run.passedBeforeVerdict).toBeLessThan(Buffer.byteLength(body));
  });

  it('streams a compressed page past the prefix: the held chunks are inflated in order, then each one as it comes', () => {
    // Numbered paragraphs: the compressed body is three times the prefix, the phrase in its middle.
    const paragraphs = (from: number): string =>
      Array.from({ length: 3000 }, (_, i) => `<p>Đoạn ${from + i}: lớp ${(i * 7) % 12} học bài ${(i * 13) % 97}.</p>`).join('');
    const inspection = ContentInspection.for(policy, 'young', { holdBackBytes: 2 * 1024 })!;
    for (const [coding, compress] of [
      ['gzip', zlib.gzipSync],
      ['br', zlib.brotliCompressSync],
    ] as const) {
      const body = compress(html(`${paragraphs(0)}<p>cá độ bóng đá</p>${paragraphs(3000)}`));
      expect(body.length, coding).toBeGreaterThan(6 * 1024);
      const run = runInspection(inspection, page(body, 'text/html', coding), 4096);
      expect(run.verdict?.category, coding).toBe('gambling');
      // The verdict fell after the prefix went out, before the end.
      expect(run.passedBeforeVerdict, coding).toBeGreaterThan(2 * 1024);
      expect(run.passedBeforeVerdict, coding).toBeLessThan(body.length);
      const clean = compress(html(`${paragraphs(0)}${paragraphs(3000)}`));
      const passed = runInspection(inspection, page(clean, 'text/html', coding), 4096);
      expect(passed.verdict, coding).toBeNull();
      expect(passed.passed.equals(clean), coding).toBe(true);
    }
  });

  it('counts context anywhere in the prefix before judging', async () => {
    const body = html(`<p>cá độ bóng đá</p>${'<p>x</p>'.repeat(500)}<p>Công an khởi tố</p>`);
    expect(runInspection(young, page(body), 512).verdict).toBeNull();
  });
});

describe('markup', () => {
  it('reads the title and the rating label whatever the attribute order', () => {
    const text: string[] = [];
    const markup = new MarkupText({ append: (s, a, b) => void text.push(s.slice(a, b)), separate: () => void text.push('|') });
    markup.write('<html><head><title>Tin  &amp; bài</title><meta content="adult" name=\'rating\'></head><body>a<br/>b</body>');
    markup.end();
    expect(markup.title).toBe('Tin & bài');
    expect(markup.adultRating).toBe(true);
    expect(text.join('').replace(/\|+/g, '|')).toBe('|Tin  & bài|a|b|');
  });

  it('reads tag names of any case and length, and only script and style as hidden text', () => {
    const text: string[] = [];
    const markup = new MarkupText({ append: (s, a, b) => void text.push(s.slice(a, b)), separate: () => void text.push('|') });
    const html = '<TITLE>Bài</TITLE><H1>a</H1><scripts>b</scripts><SCRIPT>c<d</SCRIPT>e<1>f</>g<x-y>h<stylesheet>i';
    markup.write(html);
    markup.end();
    expect(markup.title).toBe('Bài');
    expect(text.join('').replace(/\|+/g, '|')).toBe('|Bài|a|b|e|1>f|g|h|i|');
    // The same text whatever the cut.
    for (let cut = 1; cut < html.length; cut++) {
      const pieces: string[] = [];
      const cutMarkup = new MarkupText({ append: (s, a, b) => void pieces.push(s.slice(a, b)), separate: () => void pieces.push('|') });
      cutMarkup.write(html.slice(0, cut));
      cutMarkup.write(html.slice(cut));
      cutMarkup.end();
      expect(pieces.join('').replace(/\|+/g, '|'), `cut at ${cut}`).toBe('|Bài|a|b|e|1>f|g|h|i|');
    }
  });
});
