import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './harness/index.js';

// deploy/dnsmasq-lachan.conf, run for real by dnsmasq in front of an upstream that
// publishes an HTTPS record with Encrypted Client Hello keys: the students' devices get
// the site's addresses but never the keys, so their browsers send the real name in the
// SNI (deploy/README.md, "Encrypted Client Hello").

const TYPE_A = 1;
const TYPE_HTTPS = 65;
const ECH_KEY = 5;

function encodeName(name: string): Buffer {
  return Buffer.concat([...name.split('.').map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label)])), Buffer.from([0])]);
}

function query(id: number, name: string, type: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // recursion desired
  header.writeUInt16BE(1, 4);
  const question = Buffer.alloc(4);
  question.writeUInt16BE(type, 0);
  question.writeUInt16BE(1, 2);
  return Buffer.concat([header, encodeName(name), question]);
}

/** An HTTPS record as Cloudflare publishes one: priority 1, target ".", alpn h2, ech. */
function httpsRdata(): Buffer {
  const param = (key: number, value: Buffer): Buffer => {
    const head = Buffer.alloc(4);
    head.writeUInt16BE(key, 0);
    head.writeUInt16BE(value.length, 2);
    return Buffer.concat([head, value]);
  };
  return Buffer.concat([Buffer.from([0, 1, 0]), param(1, Buffer.from('\x02h2')), param(ECH_KEY, Buffer.alloc(64, 0xec))]);
}

/** The upstream resolver: every name has an A record and an HTTPS record with ECH keys. */
function answer(message: Buffer): Buffer {
  let end = 12;
  while (message[end] !== 0) end += message[end]! + 1;
  const type = message.readUInt16BE(end + 1);
  const question = message.subarray(12, end + 5);
  const rdata = type === TYPE_A ? Buffer.from([10, 0, 0, 7]) : type === TYPE_HTTPS ? httpsRdata() : null;
  const header = Buffer.alloc(12);
  message.copy(header, 0, 0, 2);
  header.writeUInt16BE(0x8180, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(rdata === null ? 0 : 1, 6);
  if (rdata === null) return Buffer.concat([header, question]);
  const record = Buffer.alloc(12);
  record.writeUInt16BE(0xc00c, 0); // the question's name
  record.writeUInt16BE(type, 2);
  record.writeUInt16BE(1, 4);
  record.writeUInt32BE(60, 6);
  record.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([header, question, record, rdata]);
}

function ask(port: number, name: string, type: number): Promise<{ answers: number; bytes: Buffer } | null> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const id = Math.floor(Math.random() * 0xffff);
    const timer = setTimeout(() => {
      socket.close();
      resolve(null);
    }, 1000);
    socket.on('message', (message) => {
      if (message.readUInt16BE(0) !== id) return;
      clearTimeout(timer);
      socket.close();
      resolve({ answers: message.readUInt16BE(6), bytes: message });
    });
    socket.send(query(id, name, type), port, '127.0.0.1');
  });
}

function bound(socket: Socket): Promise<number> {
  return new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve(socket.address().port)));
}

let upstream: Socket;
let upstreamPort: number;
let dnsmasq: ChildProcess;
let dnsmasqPort: number;
const work = mkdtempSync(path.join(tmpdir(), 'lachan-dnsmasq-'));

beforeAll(async () => {
  upstream = createSocket('udp4');
  upstream.on('message', (message, peer) => upstream.send(answer(message), peer.port, peer.address));
  upstreamPort = await bound(upstream);
  const probe = createSocket('udp4');
  dnsmasqPort = await bound(probe);
  probe.close();
  dnsmasq = spawn(
    'dnsmasq',
    [
      '--keep-in-foreground',
      `--conf-file=${path.join(REPO_ROOT, 'deploy/dnsmasq-lachan.conf')}`,
      `--port=${dnsmasqPort}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      `--server=127.0.0.1#${upstreamPort}`,
      `--pid-file=${path.join(work, 'dnsmasq.pid')}`,
      '--user=root',
      '--cache-size=0',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  dnsmasq.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  for (let attempt = 0; attempt < 50; attempt++) {
    if (dnsmasq.exitCode !== null) throw new Error(`dnsmasq exited: ${stderr}`);
    if ((await ask(dnsmasqPort, 'ready.example', TYPE_A)) !== null) return;
  }
  throw new Error(`dnsmasq did not answer: ${stderr}`);
}, 90_000);

afterAll(() => {
  dnsmasq?.kill();
  upstream?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('the school resolver with deploy/dnsmasq-lachan.conf', () => {
  it('the upstream does publish ECH keys in an HTTPS record', async () => {
    const direct = await ask(upstreamPort, 'crypto.cloudflare.com', TYPE_HTTPS);
    expect(direct?.answers).toBe(1);
  });

  it('gives devices no HTTPS record, hence no ECH keys', async () => {
    const filtered = await ask(dnsmasqPort, 'crypto.cloudflare.com', TYPE_HTTPS);
    expect(filtered).not.toBeNull();
    expect(filtered!.answers).toBe(0);
    expect(filtered!.bytes.includes(Buffer.alloc(64, 0xec))).toBe(false);
  });

  it('still gives the addresses', async () => {
    const addresses = await ask(dnsmasqPort, 'crypto.cloudflare.com', TYPE_A);
    expect(addresses?.answers).toBe(1);
    expect([...addresses!.bytes.subarray(-4)]).toEqual([10, 0, 0, 7]);
  });
});
