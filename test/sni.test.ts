import { createServer, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { parseClientHello } from '../src/proxy/sni.js';

/** Captures the first bytes a real Node TLS client sends. */
function captureClientHello(servername: string | undefined): Promise<Buffer> {
  return new Promise((resolve) => {
    const server = createServer((socket: Socket) => {
      socket.once('data', (chunk) => {
        resolve(chunk);
        socket.destroy();
        server.close();
      });
    }).listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      const client = tlsConnect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
      client.on('error', () => undefined);
    });
  });
}

describe('SNI from a real ClientHello', () => {
  it('reads the name a client asks for', async () => {
    const hello = await captureClientHello('www.Example.test');
    expect(parseClientHello(hello)).toEqual({ kind: 'sni', serverName: 'www.example.test' });
  });

  it('says when more bytes are needed, byte by byte', async () => {
    const hello = await captureClientHello('nhacai.test');
    for (let cut = 0; cut < hello.length; cut += 37) expect(parseClientHello(hello.subarray(0, cut)).kind).toBe('incomplete');
    expect(parseClientHello(hello).kind).toBe('sni');
  });

  it('reassembles a ClientHello split over two TLS records', async () => {
    const hello = await captureClientHello('split.example.test');
    const body = hello.subarray(5);
    const half = 40;
    const record = (part: Buffer): Buffer => Buffer.concat([Buffer.from([0x16, 0x03, 0x01, part.length >> 8, part.length & 0xff]), part]);
    const split = Buffer.concat([record(body.subarray(0, half)), record(body.subarray(half))]);
    expect(parseClientHello(split)).toEqual({ kind: 'sni', serverName: 'split.example.test' });
  });

  it('knows a client without SNI (IP literal) and plain HTTP', async () => {
    expect(parseClientHello(await captureClientHello(undefined)).kind).toBe('no-sni');
    expect(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n')).kind).toBe('not-tls');
  });

  it('never throws on garbage', () => {
    for (let i = 0; i < 2000; i++) {
      const junk = Buffer.from(Array.from({ length: 5 + (i % 300) }, (_, j) => (j === 0 ? 0x16 : (i * 131 + j * 17) & 0xff)));
      expect(() => parseClientHello(junk)).not.toThrow();
    }
  });
});
