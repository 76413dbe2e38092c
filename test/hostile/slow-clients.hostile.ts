import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, holdSockets, policyYaml, type RunningGateway, startGateway, until } from '../harness/index.js';

/**
 * Slowloris (2,000 connections trickling a request head) and clients that never read
 * their response: the proxy closes the first at the header deadline, does not buffer
 * for the second beyond socket buffers, and serves everyone else meanwhile.
 */

const HEADER_TIMEOUT_MS = 2_000;
const RESPONSE_BYTES = 512 * 1024 * 1024;

let origin: Server;
let originPort: number;
/** Bytes the origin managed to hand to its socket for the never-read response. */
let written = 0;
let originBlocked = false;
let proxy: RunningGateway;

beforeAll(async () => {
  origin = createServer((req, res) => {
    if (req.url !== '/huge') return void res.end('ok');
    res.writeHead(200, { 'content-length': RESPONSE_BYTES });
    const block = Buffer.alloc(64 * 1024, 0x61);
    const pump = (): void => {
      while (written < RESPONSE_BYTES) {
        written += block.length;
        if (!res.write(block)) {
          originBlocked = true;
          res.once('drain', () => {
            originBlocked = false;
            pump();
          });
          return;
        }
      }
      res.end();
    };
    pump();
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  originPort = (origin.address() as { port: number }).port;
  proxy = await startGateway({
    rules: { 'policy.yaml': policyYaml({ defaultProfile: 'hs', profiles: { hs: { name: 'Học sinh' } } }) },
    hosts: '127.0.0.1 origin.test\n',
    args: ['--header-timeout', String(HEADER_TIMEOUT_MS)],
  });
});

afterAll(async () => {
  await proxy?.stop();
  origin?.close();
});

describe('slow and never-reading clients', () => {
  it('2,000 slowloris connections from 8 hosts are closed by the proxy at the header deadline, and others are served meanwhile', async () => {
    const hosts = await Promise.all(Array.from({ length: 8 }, (_, i) => holdSockets(proxy.port, `127.0.4.${i + 1}`, 250)));
    const all = hosts.flatMap((h) => [...h.sockets]);
    const head = `GET http://origin.test:${originPort}/ HTTP/1.1\r\nHost: origin.test\r\nX-Slow: ${'z'.repeat(10_000)}`;
    let at = 0;
    const trickle = setInterval(() => {
      for (const socket of all) if (!socket.destroyed) socket.write(head[at % head.length]!);
      at++;
    }, 250);
    try {
      const served = await Promise.all(
        Array.from({ length: 10 }, (_, i) => curl(proxy.port, `http://origin.test:${originPort}/`, { from: `127.0.5.${i + 1}` })),
      );
      expect(served.map((r) => r.status)).toEqual(Array.from({ length: 10 }, () => 200));
      // The proxy closes them; the test never does until it is over.
      await until('every slowloris connection is closed by the proxy', () => hosts.every((h) => h.open() === 0), 60_000);
    } finally {
      clearInterval(trickle);
      await Promise.all(hosts.map((h) => h.release()));
    }
  });

  it('a client that never reads a 512 MiB response holds no more than socket buffers of it in the proxy', async () => {
    const client: Socket = connect(proxy.port, '127.0.0.1');
    client.on('error', () => undefined);
    client.pause();
    client.write(`GET http://origin.test:${originPort}/huge HTTP/1.1\r\nHost: origin.test\r\n\r\n`);
    try {
      // Kernel buffers on loopback grow for a while; then the origin stays held back.
      let last = -1;
      let steady = 0;
      await until(
        'the origin is held back for good',
        () => {
          steady = originBlocked && written === last ? steady + 1 : 0;
          last = written;
          return steady >= 60;
        },
        60_000,
      );
      expect(written).toBeLessThan(64 * 1024 * 1024);
      expect((await curl(proxy.port, `http://origin.test:${originPort}/`)).body).toBe('ok');
    } finally {
      client.destroy();
    }
  });

  // More than the 64 connections the proxy keeps per origin: a connection held by a client
  // that is not reading stops counting, so other requests to that origin are not queued behind them.
  it('150 never-reading clients of one origin at once do not stop the proxy serving others from it', async () => {
    const readers = Array.from({ length: 150 }, (_, i) => {
      const socket = connect({ port: proxy.port, host: '127.0.0.1', localAddress: `127.0.6.${i + 1}` });
      socket.on('error', () => undefined);
      socket.pause();
      socket.write(`GET http://origin.test:${originPort}/huge HTTP/1.1\r\nHost: origin.test\r\n\r\n`);
      return socket;
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const served = await Promise.all(Array.from({ length: 10 }, () => curl(proxy.port, `http://origin.test:${originPort}/`)));
      expect(served.map((r) => r.body)).toEqual(Array.from({ length: 10 }, () => 'ok'));
      expect(proxy.child.exitCode).toBeNull();
    } finally {
      for (const socket of readers) socket.destroy();
    }
  });
});
