import { describe, expect, it } from 'vitest';
import { bareHost, parseAbsoluteTarget, parseConnectTarget, parseOriginFormTarget, parseTypedTarget, serverNameTarget } from '../src/proxy/target.js';

describe('the canonical target (docs/contract.md §3, §4)', () => {
  it.each([
    // [what the request named, host, port, pathAndQuery]
    ['http://Example.COM/a?b=1', 'example.com', 80, '/a?b=1'],
    ['http://example.com./', 'example.com', 80, '/'],
    ['HTTPS://WWW.Example.Com.:8443/x', 'www.example.com', 8443, '/x'],
    ['http://[2001:DB8::0001]/', '[2001:db8::1]', 80, '/'],
    ['http://[::FFFF:192.0.2.2]:8080/', '[::ffff:c000:202]', 8080, '/'],
    ['http://bücher.de/', 'xn--bcher-kva.de', 80, '/'],
    ['http://BÜCHER.DE./', 'xn--bcher-kva.de', 80, '/'],
    ['http://trường.vn/tin', 'xn--trng-rib8295b.vn', 80, '/tin'],
    ['http://0x7f.1/', '127.0.0.1', 80, '/'],
    ['http://user:pass@example.com/', 'example.com', 80, '/'],
    ['https://example.com:443/', 'example.com', 443, '/'],
    ['http://example.com:80', 'example.com', 80, '/'],
    ['ws://chat.example./socket', 'chat.example', 80, '/socket'],
    ['wss://chat.example/socket', 'chat.example', 443, '/socket'],
  ])('%s is %s port %i', (text, host, port, pathAndQuery) => {
    const target = parseAbsoluteTarget(text);
    expect(target).toMatchObject({ host, port, pathAndQuery });
  });

  it('keeps the spelling the client asked for as the Host authority, default ports left out', () => {
    expect(parseAbsoluteTarget('http://Example.com.:80/')?.authority).toBe('example.com.');
    expect(parseAbsoluteTarget('http://example.com:8080/')?.authority).toBe('example.com:8080');
    expect(parseAbsoluteTarget('https://[::1]:443/')?.authority).toBe('[::1]');
  });

  it('records the path without its query', () => {
    expect(parseAbsoluteTarget('http://example.com/a/b?secret=1')?.path).toBe('/a/b');
  });

  it.each(['ftp://example.com/', 'file:///etc/passwd', 'http://[::1/', 'not a url', '/relative'])('%j is no target', (text) => {
    expect(parseAbsoluteTarget(text)).toBeNull();
  });

  it('reads CONNECT authorities the same way', () => {
    expect(parseConnectTarget('Example.COM.:443')).toMatchObject({ host: 'example.com', port: 443, scheme: 'https' });
    expect(parseConnectTarget('[2001:db8::1]:443')).toMatchObject({ host: '[2001:db8::1]', port: 443 });
    expect(parseConnectTarget('bücher.de:443')?.host).toBe('xn--bcher-kva.de');
    for (const bad of ['example.com', 'example.com:0', 'example.com:65536', 'a@example.com:443', 'example.com/x:443', ':443'])
      expect(parseConnectTarget(bad)).toBeNull();
  });

  it('reads a TLS server name and an origin-form request the same way', () => {
    expect(serverNameTarget('www.example.com.', 443)).toMatchObject({ host: 'www.example.com', port: 443 });
    expect(serverNameTarget('evil.com:80', 443)).toBeNull();
    expect(parseOriginFormTarget('http', 'Example.com.:8080', '/p?q')).toMatchObject({ host: 'example.com', port: 8080, pathAndQuery: '/p?q' });
    expect(parseOriginFormTarget('http', 'example.com', 'http://other/')).toBeNull();
  });

  it('strips IPv6 brackets for DNS and SNI only', () => {
    expect(bareHost('[::1]')).toBe('::1');
    expect(bareHost('example.com')).toBe('example.com');
  });

  describe('lachan check and the proxy agree', () => {
    it.each(['http://WWW.BET.EXAMPLE./', 'https://Bücher.de./x?y', 'http://[::1]:8080/a', 'http://0x7f.0.0.1/', 'http://u@Example.com/p'])('%s', (url) => {
      const typed = parseTypedTarget(url);
      expect(typed).not.toBeNull();
      expect(typed).toEqual(parseAbsoluteTarget(url));
    });

    it('takes a URL typed without a scheme as http, as the proxy would see it', () => {
      expect(parseTypedTarget('Example.com./news?id=1')).toEqual(parseAbsoluteTarget('http://Example.com./news?id=1'));
    });

    it('decides a CONNECT and a typed URL on the same host', () => {
      expect(parseConnectTarget('WWW.Bücher.DE.:443')?.host).toBe(parseTypedTarget('https://www.bücher.de/')?.host);
    });

    it('refuses what the proxy would not forward', () => {
      expect(parseTypedTarget('ws://example.com/')).toBeNull();
      expect(parseTypedTarget('ftp://example.com/')).toBeNull();
    });
  });
});
