import fc from 'fast-check';
import { canonicalAddress, DestinationGuard } from '../../src/proxy/addresses.js';
import { parseResponseHead, OriginError } from '../../src/proxy/origin-client.js';
import type { Policy } from '../../src/policy/engine.js';
import { loadPolicy } from '../../src/rules/loader.js';
import { cut, makeRulesDir, runReader } from '../harness/index.js';

/**
 * The hostile suite's properties: no crash and no bypass for any generated input.
 * Each is a fast-check property; `npm test` runs them briefly (properties.test.ts),
 * `npm run test:hostile` for many more runs (properties.hostile.ts).
 */

/** The gateway's own addresses in these properties. */
export const OWN = ['192.0.2.2', '2001:db8:5::2'];
const guard = new DestinationGuard(OWN);

const byte = fc.integer({ min: 0, max: 255 });
const quad = (a: number, b: number, c: number, d: number): string => `${a}.${b}.${c}.${d}`;

/** IPv4 addresses that must never be dialled: loopback, link-local, "this network", the gateway's own. */
const forbiddenIpv4 = fc.oneof(
  fc.tuple(byte, byte, byte).map(([b, c, d]) => quad(127, b, c, d)),
  fc.tuple(byte, byte).map(([c, d]) => quad(169, 254, c, d)),
  fc.tuple(byte, byte, byte).map(([b, c, d]) => quad(0, b, c, d)),
  fc.constant('192.0.2.2'),
);

/** IPv4 addresses outside every refused range (and not the gateway's). */
const publicIpv4 = fc
  .tuple(fc.integer({ min: 1, max: 223 }), byte, byte, byte)
  .filter(([a, b]) => a !== 127 && a !== 10 && !(a === 169 && b === 254) && a !== 0)
  .map(([a, b, c, d]) => quad(a, b, c, d))
  .filter((v4) => v4 !== '192.0.2.2');

const hex16 = (n: number): string => n.toString(16);
/** Every IPv6 spelling that carries `v4` (mapped, compatible, SIIT, NAT64, 6to4, Teredo), with random zero padding and case. */
function ipv6Forms(v4: string): fc.Arbitrary<string> {
  const [a, b, c, d] = v4.split('.').map(Number) as [number, number, number, number];
  const hi = (a << 8) | b;
  const lo = (c << 8) | d;
  const pad = (group: string, width: number): string => group.padStart(width, '0');
  return fc
    .tuple(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 1, max: 4 }), fc.boolean(), fc.integer({ min: 0, max: 0xffff }))
    .map(([form, width, upper, extra]) => {
      const g = (n: number): string => pad(hex16(n), width);
      const text = [
        `::ffff:${v4}`,
        `::ffff:${g(hi)}:${g(lo)}`,
        `0:0:0:0:0:ffff:${g(hi)}:${g(lo)}`,
        `${g(0)}:${g(0)}:${g(0)}:${g(0)}:${g(0)}:ffff:${v4}`,
        `::${g(hi)}:${g(lo)}`,
        `::ffff:0:${g(hi)}:${g(lo)}`,
        `64:ff9b::${g(hi)}:${g(lo)}`,
        `2002:${g(hi)}:${g(lo)}:${g(extra)}::${g(extra)}`,
        `2001:0:${g(hi)}:${g(lo)}::${g(extra)}`,
      ][form]!;
      return upper ? text.toUpperCase() : text;
    });
}

export function addressProperties(): { name: string; property: fc.IPropertyWithHooks<never> | fc.IProperty<never> }[] {
  return [
    {
      name: 'a refused IPv4 address is refused in every IPv6 form that carries it',
      property: fc.property(
        forbiddenIpv4.chain((v4) => ipv6Forms(v4).map((form) => [v4, form] as const)),
        ([v4, form]) => {
          const parsed = canonicalAddress(form);
          return parsed !== null && guard.refuses(parsed) && guard.refuses(canonicalAddress(v4)!);
        },
      ) as unknown as fc.IProperty<never>,
    },
    {
      name: 'a public IPv4 address in mapped, NAT64 or 6to4 form is not refused, and mapped is dialled as IPv4',
      property: fc.property(publicIpv4, (v4) => {
        const [a, b, c, d] = v4.split('.').map(Number) as [number, number, number, number];
        const mapped = canonicalAddress(`::ffff:${v4}`);
        return (
          mapped?.text === v4 &&
          mapped.family === 4 &&
          !guard.refuses(mapped) &&
          !guard.refuses(canonicalAddress(`64:ff9b::${hex16((a << 8) | b)}:${hex16((c << 8) | d)}`)!) &&
          !guard.refuses(canonicalAddress(`2002:${hex16((a << 8) | b)}:${hex16((c << 8) | d)}::1`)!)
        );
      }) as unknown as fc.IProperty<never>,
    },
    {
      name: 'any IPv6 address reads as the WHATWG URL parser reads it, canonically and idempotently',
      property: fc.property(fc.ipV6(), (text) => {
        const ours = canonicalAddress(text);
        const url = canonicalAddress(new URL(`http://[${text}]/`).hostname);
        return ours !== null && url !== null && ours.text === url.text && canonicalAddress(ours.text)?.text === ours.text;
      }) as unknown as fc.IProperty<never>,
    },
    {
      name: 'any IPv4 spelling the URL parser takes (shortened, octal, hex) reads as the URL parser reads it',
      property: fc.property(fc.ipV4Extended(), (text) => {
        let hostname: string;
        try {
          hostname = new URL(`http://${text}/`).hostname;
        } catch {
          return true;
        }
        return canonicalAddress(text)?.text === hostname;
      }) as unknown as fc.IProperty<never>,
    },
    {
      name: 'any string: canonicalAddress does not throw, and what it accepts it accepts again unchanged',
      property: fc.property(fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEFxX.:%[]'.split('')) })), (text) => {
        const parsed = canonicalAddress(text);
        if (parsed === null) return true;
        guard.refuses(parsed);
        return canonicalAddress(parsed.text)?.text === parsed.text;
      }) as unknown as fc.IProperty<never>,
    },
  ];
}

/** Rules for the policy properties: one blocked domain, one blocked keyword. */
export function loadHostilePolicy(): Promise<Policy> {
  return loadPolicy(
    makeRulesDir({
      'policy.yaml': 'version: 1\ndefault_profile: hs\nprofiles:\n  hs:\n    name: "Học sinh"\n    block_categories: [gambling]\n',
      'categories/gambling/domains': 'blocked.example\n',
      'categories/gambling/keywords': 'cờ bạc\n',
    }),
  );
}

/** The host and path the proxy decides on for an absolute-form target (server.ts: URL.hostname without a trailing dot). */
function proxyTarget(url: string): { host: string; path: string } | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  const host = parsed.hostname.endsWith('.') ? parsed.hostname.slice(0, -1) : parsed.hostname;
  return { host, path: `${parsed.pathname}${parsed.search}` };
}

const FULL_WIDTH_OFFSET = 0xff41 - 0x61;
/** A spelling of one host character a browser may send and the URL parser folds back: case, percent-encoding, full-width form. */
const hostCharSpelling = (ch: string): fc.Arbitrary<string> => {
  if (!/[a-z]/.test(ch)) return fc.constant(ch);
  return fc.constantFrom(
    ch,
    ch.toUpperCase(),
    `%${ch.charCodeAt(0).toString(16)}`,
    `%${ch.charCodeAt(0).toString(16).toUpperCase()}`,
    String.fromCharCode(ch.charCodeAt(0) + FULL_WIDTH_OFFSET),
  );
};
const spellHost = (host: string): fc.Arbitrary<string> => fc.tuple(...[...host].map(hostCharSpelling)).map((chars) => chars.join(''));

/** A spelling of one keyword character: case, decomposed (NFD), invisible characters around it. */
const INVISIBLE = ['', '', '', '\u200b', '\u200d', '\ufeff', '\u00ad'];
const keywordCharSpelling = (ch: string): fc.Arbitrary<string> =>
  fc
    .tuple(fc.constantFrom(ch, ch.toUpperCase(), ch.normalize('NFD'), ch.toUpperCase().normalize('NFD')), fc.constantFrom(...INVISIBLE))
    .map(([spelled, invisible]) => (ch === ' ' ? spelled : `${spelled}${invisible}`));

/** `policyOf`: the loaded policy, read when the property runs. */
export function policyProperties(policyOf: () => Policy): { name: string; property: fc.IProperty<never> }[] {
  return [
    {
      name: 'a blocked domain stays blocked in any spelling the URL parser folds (case, %-escapes, full-width, trailing dot, subdomains)',
      property: fc.property(
        spellHost('blocked.example'),
        fc.array(
          fc.stringMatching(/^[a-z0-9-]{1,10}$/).filter((label) => !label.startsWith('-') && !label.endsWith('-') && !/^xn--/.test(label)),
          { maxLength: 3 },
        ),
        fc.boolean(),
        (spelled, labels, trailingDot) => {
          const url = `http://${[...labels, spelled].join('.')}${trailingDot ? '.' : ''}/`;
          const target = proxyTarget(url);
          return target !== null && policyOf().decide('hs', target.host, target.path).action === 'block';
        },
      ) as unknown as fc.IProperty<never>,
    },
    {
      name: 'a blocked keyword stays blocked in a URL in any case, composition and with invisible characters',
      property: fc.property(fc.tuple(...[...'cờ bạc'].map(keywordCharSpelling)), fc.constantFrom('q=', 's='), (chars, param) => {
        const target = proxyTarget(`http://search.example/find?${param}${encodeURIComponent(chars.join(''))}`);
        return target !== null && policyOf().decide('hs', target.host, target.path).action === 'block';
      }) as unknown as fc.IProperty<never>,
    },
    {
      name: 'any URL the URL parser takes is decided without a crash',
      property: fc.property(
        fc.oneof(
          fc.webUrl({ withQueryParameters: true, withFragments: true }),
          fc.string().map((s) => `http://${s}`),
        ),
        (url) => {
          const target = proxyTarget(url);
          if (target === null || target.host === '') return true;
          const decision = policyOf().decide('hs', target.host, target.path);
          return decision.action === 'block' || decision.action === 'allow';
        },
      ) as unknown as fc.IProperty<never>,
    },
  ];
}

const TOKEN = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}$/);
const FIELD_VALUE = fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,20}[\x21-\x7e])?$/);

export function readerProperties(): { name: string; property: fc.IProperty<never> }[] {
  return [
    {
      name: 'the response-head reader never throws, whatever the bytes',
      property: fc.property(fc.string({ unit: 'binary' }), fc.boolean(), (text, isHead) => {
        const result = parseResponseHead(text, isHead);
        return result instanceof OriginError || typeof result.status === 'number';
      }) as unknown as fc.IProperty<never>,
    },
    {
      name: 'a well-formed head is read with its status and length',
      property: fc.property(
        fc.integer({ min: 200, max: 599 }).filter((s) => s !== 204 && s !== 304),
        fc.integer({ min: 0, max: 1e9 }),
        fc.array(
          fc.tuple(TOKEN, FIELD_VALUE).filter(([name]) => !/^(content-length|transfer-encoding|connection|keep-alive)$/i.test(name)),
          { maxLength: 6 },
        ),
        (status, length, fields) => {
          const head = [`HTTP/1.1 ${status} X`, ...fields.map(([n, v]) => `${n}: ${v}`), `Content-Length: ${length}`].join('\r\n');
          const result = parseResponseHead(head, false);
          // Framing: none for an empty body, else a fixed length.
          return (
            !(result instanceof OriginError) &&
            result.status === status &&
            (length === 0 ? result.framing === 0 : result.framing === 1 && result.length === length)
          );
        },
      ) as unknown as fc.IProperty<never>,
    },
    {
      name: 'a head with a bare CR, bare LF or NUL inside a field is refused',
      property: fc.property(TOKEN, FIELD_VALUE, FIELD_VALUE, fc.constantFrom('\r', '\n', '\0'), (name, before, after, bad) => {
        const head = `HTTP/1.1 200 OK\r\n${name}: ${before}${bad}${after}\r\nContent-Length: 0`;
        return parseResponseHead(head, false) instanceof OriginError;
      }) as unknown as fc.IProperty<never>,
    },
    {
      name: 'a response, chunked or sized, is read the same wherever its bytes are cut',
      property: fc.property(
        fc.array(
          fc.tuple(TOKEN, FIELD_VALUE).filter(([name]) => !/^(content-length|transfer-encoding|connection|keep-alive)$/i.test(name)),
          { maxLength: 4 },
        ),
        fc.array(
          fc.uint8Array({ minLength: 1, maxLength: 40 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
          { maxLength: 5 },
        ),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 8 }),
        (fields, pieces, chunked, cuts) => {
          const body = pieces.join('');
          const framing = chunked ? ['Transfer-Encoding: chunked'] : [`Content-Length: ${body.length}`];
          const payload = chunked ? `${pieces.map((piece) => `${piece.length.toString(16)}\r\n${piece}\r\n`).join('')}0\r\n\r\n` : body;
          const bytes = Buffer.from(`${['HTTP/1.1 200 OK', ...fields.map(([n, v]) => `${n}: ${v}`), ...framing].join('\r\n')}\r\n\r\n${payload}`, 'latin1');
          const at = [...new Set(cuts.map((n) => n % (bytes.length + 1)))].sort((a, b) => a - b);
          const whole = runReader([bytes]);
          const split = runReader(cut(bytes, at));
          return whole.outcome === 'end' && whole.body === body && JSON.stringify(split) === JSON.stringify(whole);
        },
      ) as unknown as fc.IProperty<never>,
    },
  ];
}
