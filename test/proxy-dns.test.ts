import { createSocket, type Socket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Resolver } from '../src/proxy/resolver.js';

/** A DNS server of a few lines: answers A queries for `ttl.test` with a chosen TTL, counts queries. */
let server: Socket;
let port: number;
let queries = 0;
const TTL_SECONDS = 6;

beforeAll(async () => {
  server = createSocket('udp4');
  server.on('message', (query, peer) => {
    // Question: after the 12-byte header, a name of labels, then type and class.
    let end = 12;
    while (query[end] !== 0) end += query[end]! + 1;
    const type = query.readUInt16BE(end + 1);
    const question = query.subarray(12, end + 5);
    const name = question.subarray(0, end - 12 + 1);
    const isOurs = name.toString('latin1').includes('ttl');
    queries += type === 1 ? 1 : 0;
    const header = Buffer.alloc(12);
    query.copy(header, 0, 0, 2); // id
    header.writeUInt16BE(isOurs ? 0x8180 : 0x8183, 2); // response, recursion; NXDOMAIN if not ours
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(isOurs && type === 1 ? 1 : 0, 6);
    const answer = isOurs && type === 1 ? Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, TTL_SECONDS, 0, 4, 198, 51, 100, 7]) : Buffer.alloc(0);
    server.send(Buffer.concat([header, question, answer]), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
  port = server.address().port;
});

afterAll(() => server.close());

describe('DNS answers are cached for their TTL', () => {
  it('asks once within the TTL and again after it', async () => {
    const resolver = new Resolver(null, [`127.0.0.1:${port}`]);
    expect((await resolver.resolve('ttl.test')).address).toBe('198.51.100.7');
    expect((await resolver.resolve('ttl.test')).address).toBe('198.51.100.7');
    expect(queries).toBe(1);
    await new Promise((r) => setTimeout(r, TTL_SECONDS * 1000 + 300));
    await resolver.resolve('ttl.test');
    expect(queries).toBe(2);
  }, 20_000);

  it('reports a name DNS does not know as a DNS failure', async () => {
    const resolver = new Resolver(null, [`127.0.0.1:${port}`]);
    await expect(resolver.resolve('missing.invalid')).rejects.toMatchObject({ code: 'LACHAN_DNS_FAILED' });
  });
});
