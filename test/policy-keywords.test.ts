import { describe, expect, it } from 'vitest';
import { KeywordSetBuilder, type KeywordSet } from '../src/policy/keywords.js';
import { decodePunycode } from '../src/policy/text.js';
import { CATEGORY_ALLOWS, CATEGORY_BLOCKS, CATEGORY_IGNORED } from '../src/policy/types.js';

const GAMBLING = 1;
const ADULT = 2;
const OFF = 3;

/** Builds a set from `[phrase, category]` pairs; line numbers are 1-based order. */
function build(entries: ReadonlyArray<readonly [string, number]>): KeywordSet {
  const builder = new KeywordSetBuilder();
  entries.forEach(([phrase, category], i) => {
    const error = builder.add(phrase, category, 7, i + 1);
    if (error !== null) throw new Error(`${phrase}: ${error}`);
  });
  return builder.build();
}

const ACTIONS = new Uint8Array(4);
ACTIONS[GAMBLING] = CATEGORY_BLOCKS;
ACTIONS[ADULT] = CATEGORY_BLOCKS;
ACTIONS[OFF] = CATEGORY_IGNORED;

const SET = build([
  ['cờ bạc', GAMBLING],
  ['nhà cái', GAMBLING],
  ['*nhacai*', GAMBLING],
  ['*casino', GAMBLING],
  ['xvideo*', ADULT],
  ['phim người lớn', ADULT],
  ['ma túy', GAMBLING],
  ['secret phrase', OFF],
  ['tài xỉu', GAMBLING],
  ['đánh bạc', GAMBLING],
]);

function textHit(text: string, set = SET, actions = ACTIONS): string | null {
  const i = set.matchText(text, actions);
  return i < 0 ? null : set.phraseOf(i);
}

function urlHit(host: string, pathAndQuery: string, set = SET, actions = ACTIONS): string | null {
  const i = set.matchUrl(host, pathAndQuery, actions);
  return i < 0 ? null : set.phraseOf(i);
}

describe('keyword matching in text', () => {
  const cases: ReadonlyArray<readonly [string, string, string | null]> = [
    // [why, text, expected phrase or null]
    ['exact, NFC', 'tệ nạn cờ bạc ở quê', 'cờ bạc'],
    ['upper case', 'CỜ BẠC', 'cờ bạc'],
    ['mixed case', 'Cờ Bạc', 'cờ bạc'],
    ['no diacritics at all', 'bo co bac di', 'cờ bạc'],
    ['one word without diacritics', 'chơi cờ bac', 'cờ bạc'],
    ['other word without diacritics', 'chơi co bạc', 'cờ bạc'],
    ['other diacritics on one word', 'cờ bác', null],
    ['other diacritics on the first word', 'cơ bạc', null],
    ['a modifier alone differs', 'cơ bac', null],
    ['NFD input', 'co\u031B\u0300 ba\u0323c', 'cờ bạc'],
    ['NFD upper case', 'CO\u031B\u0300 BA\u0323C', 'cờ bạc'],
    ['zero-width space inside a word', 'c\u200Bờ bạc', 'cờ bạc'],
    ['zero-width joiner and BOM', 'cờ\u200D b\uFEFFạc', 'cờ bạc'],
    ['soft hyphen', 'cờ bạ\u00ADc', 'cờ bạc'],
    ['keyword inside a longer word', 'cờbạc', null],
    ['prefix of a longer word', 'cờ bạcx', null],
    ['letters before', 'xcờ bạc', null],
    ['digit is part of a word', 'cờ bạc9', null],
    ['punctuation run between words', 'nhà -- ,. cái', 'nhà cái'],
    ['newline and tab between words', 'nhà\n\tcái', 'nhà cái'],
    ['words in the wrong order', 'cái nhà', null],
    ['word missing', 'nhà to cái', null],
    ['punctuation around', '"nhà cái!"', 'nhà cái'],
    ['d with stroke stripped', 'mua ma tuy', 'ma túy'],
    ['old tone placement', 'ma tuý', 'ma túy'],
    ['đ stripped to d', 'danh bac', 'đánh bạc'],
    ['d without its stroke but with tones is another word', 'dánh bạc', null],
    ['Đ upper case', 'ĐÁNH BẠC', 'đánh bạc'],
    ['leading star inside a word', 'mycasino', '*casino'],
    ['leading star whole word', 'casino', '*casino'],
    ['leading star: nothing after', 'casinos', null],
    ['trailing star', 'xvideos', 'xvideo*'],
    ['trailing star: nothing before', 'axvideos', null],
    ['both stars', 'vn88nhacai88', '*nhacai*'],
    ['both stars, accented text word', 'vn88nhàcái', null],
    ['ignored category', 'secret phrase', null],
    ['empty text', '', null],
    ['only punctuation', '!!! ... ???', null],
    ['emoji around', '🎰cờ bạc🎰', 'cờ bạc'],
    ['full-width letters', 'ｃａｓｉｎｏ', '*casino'],
    ['non-breaking spaces', 'nhà\u00A0cái', 'nhà cái'],
  ];
  it.each(cases)('%s', (_why, text, expected) => {
    expect(textHit(text)).toBe(expected);
  });

  it('finds a keyword across the slices of a long page', () => {
    const filler = 'lorem ipsum dolor sit amet '.repeat(400); // > 4096 code units
    for (let cut = 4090; cut < 4100; cut++) {
      const text = filler.slice(0, cut) + ' cờ bạc ' + filler;
      expect(textHit(text)).toBe('cờ bạc');
    }
    // A combining mark right after a slice boundary (index 4096) still belongs to
    // the letter before it: `cò bạc` is another phrase, `cờ bạc` the keyword.
    const head = 'x'.repeat(4093) + ' co';
    expect(head.length).toBe(4096);
    expect(textHit(head + '\u0300 bạc')).toBeNull();
    expect(textHit(head + '\u031B\u0300 bạc')).toBe('cờ bạc');
  });

  it('does not match when no category of the set blocks', () => {
    const allowing = new Uint8Array(4);
    allowing[GAMBLING] = CATEGORY_ALLOWS;
    expect(textHit('cờ bạc', SET, allowing)).toBeNull();
    expect(textHit('cờ bạc', SET, new Uint8Array(0))).toBeNull();
  });
});

describe('keyword matching in URLs', () => {
  const cases: ReadonlyArray<readonly [string, string, string, string | null]> = [
    // [why, host, path and query, expected]
    ['words split by hyphens in the path', 'news.example', '/tin/co-bac-online', 'cờ bạc'],
    ['underscores', 'news.example', '/tin/co_bac', 'cờ bạc'],
    ['dots and slashes', 'news.example', '/co.bac/x', 'cờ bạc'],
    ['query, + as space', 'search.example', '/?q=nha+cai', 'nhà cái'],
    ['query, = and & as separators', 'search.example', '/?nha=cai&x=1', 'nhà cái'],
    ['percent-encoded UTF-8 in the query', 'search.example', '/?q=nh%C3%A0+c%C3%A1i', 'nhà cái'],
    ['percent-encoded UTF-8 in the path', 'news.example', '/c%E1%BB%9D-b%E1%BA%A1c', 'cờ bạc'],
    ['lower-case hex', 'news.example', '/c%e1%bb%9d-b%e1%ba%a1c', 'cờ bạc'],
    ['percent-encoded NFD', 'news.example', '/co%CC%9B%CC%80%20ba%CC%A3c', 'cờ bạc'],
    ['percent-encoded other diacritics', 'news.example', '/c%E1%BB%9D-b%C3%A1c', null],
    ['%20 and %2B as separators', 'news.example', '/nha%20cai%2Bx', 'nhà cái'],
    ['+ in the path', 'news.example', '/nha+cai', 'nhà cái'],
    ['invalid percent escape is a separator', 'news.example', '/nha%ZZcai', null],
    ['broken UTF-8 becomes a separator', 'news.example', '/nha%C3cai', 'nhà cái'],
    ['raw Unicode in the path', 'news.example', '/tin/cờ-bạc', 'cờ bạc'],
    ['host labels as words', 'co-bac.example', '/', 'cờ bạc'],
    ['host label across dots', 'co.bac.example', '/', 'cờ bạc'],
    ['whole word not inside a host label', 'cobac.example', '/', null],
    ['wildcard inside a host label', 'vn88nhacai.com', '/', '*nhacai*'],
    ['wildcard at the label start', 'nhacai88.net', '/', '*nhacai*'],
    ['wildcard in the path', 'x.example', '/go/topnhacaiuytin', '*nhacai*'],
    ['leading star on a host label', 'bestcasino.example', '/', '*casino'],
    ['trailing star on a host label', 'xvideos2.example', '/', 'xvideo*'],
    ['trailing star needs a boundary before', 'nflxvideo.net', '/', null],
    ['nothing in an ordinary URL', 'dantri.com.vn', '/giao-duc/hoc-sinh-gioi.htm', null],
    ['keyword split between host and path counts', 'tin.nha', '/cai', 'nhà cái'],
    ['ignored category in a URL', 'x.example', '/secret-phrase', null],
  ];
  it.each(cases)('%s', (_why, host, path, expected) => {
    expect(urlHit(host, path)).toBe(expected);
  });

  it('decodes punycode host labels', () => {
    const host = new URL('http://cờ-bạc.example/').hostname; // xn--...
    expect(host.startsWith('xn--')).toBe(true);
    expect(urlHit(host, '/')).toBe('cờ bạc');
    const other = new URL('http://cờ-bác.example/').hostname;
    expect(urlHit(other, '/')).toBeNull();
    // Not valid punycode: matched as the ASCII it is, and no crash.
    expect(urlHit('xn--cobac-!!.example', '/')).toBeNull();
    expect(urlHit('xn--nhacai-_.example', '/')).toBe('*nhacai*');
  });

  it('handles a long URL and reuses its buffer', () => {
    const long = '/' + 'a-'.repeat(5000) + 'co-bac';
    expect(urlHit('x.example', long)).toBe('cờ bạc');
    expect(urlHit('x.example', '/ok')).toBeNull();
  });
});

describe('KeywordSetBuilder.add lint messages', () => {
  const rejected: ReadonlyArray<readonly [string, RegExp]> = [
    ['', /empty/],
    ['   ', /empty/],
    ['*', /no letters/],
    ['**', /no letters|only at the start/],
    ['!!!', /no letters/],
    ['nha*cai', /only at the start or the end/],
    ['* nhacai', /must touch a letter/],
    ['nhacai *', /must touch a letter/],
    ['ke', /at least 3/],
    ['CO', /at least 3/],
    ['a b', /at least 3/],
    ['*bet*', /at least 4/],
    ['w88*', /at least 4/],
    ['a'.repeat(120), /too long/],
  ];
  it.each(rejected)('rejects %j', (phrase, message) => {
    const error = new KeywordSetBuilder().add(phrase, 1, 0, 1);
    expect(error).toMatch(message);
  });

  const accepted = ['cờ bạc', 'vcl', 'ma túy', 'nhà-cái', '*nhacai*', 'casino*', '  lô đề  ', 'đi ra'];
  it.each(accepted)('accepts %j', (phrase) => {
    expect(new KeywordSetBuilder().add(phrase, 1, 0, 1)).toBeNull();
  });
});

describe('entry accessors', () => {
  it('report category, file, line and the phrase as written (NFC, lower case)', () => {
    const builder = new KeywordSetBuilder();
    expect(builder.add('  CO\u031B\u0300   BẠC ', 5, 3, 42)).toBeNull();
    expect(builder.add('*NhaCai*', 6, 4, 7)).toBeNull();
    const set = builder.build();
    expect(set.size).toBe(2);
    const actions = new Uint8Array(8).fill(CATEGORY_BLOCKS);
    const i = set.matchText('co bac', actions);
    expect([set.categoryOf(i), set.fileOf(i), set.lineOf(i), set.phraseOf(i)]).toEqual([5, 3, 42, 'cờ bạc']);
    const j = set.matchUrl('vn88nhacai.com', '/', actions);
    expect([set.categoryOf(j), set.fileOf(j), set.lineOf(j), set.phraseOf(j)]).toEqual([6, 4, 7, '*nhacai*']);
  });

  it('picks the blocking entry when one phrase is in several categories', () => {
    const set = build([
      ['cờ bạc', OFF],
      ['cờ bạc', GAMBLING],
    ]);
    const i = set.matchText('co bac', ACTIONS);
    expect(set.categoryOf(i)).toBe(GAMBLING);
    expect(set.lineOf(i)).toBe(2);
  });

  it('keeps the first line of a duplicate keyword in one category', () => {
    const set = build([
      ['cờ bạc', GAMBLING],
      ['CỜ BẠC', GAMBLING],
    ]);
    expect(set.size).toBe(1);
    expect(set.lineOf(set.matchText('cờ bạc', ACTIONS))).toBe(1);
  });

  it('checks every keyword ending at one place (overlapping patterns)', () => {
    const set = build([
      ['ab cd ef', GAMBLING],
      ['cd ef', ADULT],
      ['*cdef', OFF],
    ]);
    const onlyAdult = new Uint8Array(4);
    onlyAdult[ADULT] = CATEGORY_BLOCKS;
    expect(textHit('xx ab cd ef', set, onlyAdult)).toBe('cd ef');
    expect(textHit('xx ab cd ef', set, ACTIONS)).toBe('ab cd ef');
  });

  it('an empty set matches nothing', () => {
    const set = new KeywordSetBuilder().build();
    expect(set.size).toBe(0);
    expect(set.matchUrl('x.example', '/co-bac', ACTIONS)).toBe(-1);
    expect(set.matchText('cờ bạc', ACTIONS)).toBe(-1);
  });
});

describe('decodePunycode', () => {
  it('decodes RFC 3492 sample labels', () => {
    const out = new Uint32Array(64);
    const decode = (label: string): string | null => {
      const n = decodePunycode(label, 0, label.length, out);
      return n < 0 ? null : String.fromCodePoint(...out.subarray(0, n));
    };
    // RFC 3492 §7.1 (B) Chinese (simplified) and (L) Japanese with ASCII
    expect(decode('ihqwcrb4cv8a8dqg056pqjye')).toBe('他们为什么不说中文');
    expect(decode('3B-ww4c5e180e575a65lsy2b')).toBe('3年B組金八先生');
    expect(decode('tisch-')).toBe('tisch');
    expect(decode('!!')).toBeNull();
    expect(decode(new URL('http://tiếng-việt.vn').hostname.split('.')[0]!.slice(4))).toBe('tiếng-việt');
  });
});
