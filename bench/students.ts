/**
 * npm run bench:students: the gateway's memory and CPU for N simulated students, for the
 * sizing table of deploy/README.md. Not part of CI.
 *
 *   npm run bench:students [-- --students 50,100,200 --rate 0.5 --seconds 60 --workers 1]
 *
 * One real gateway (`lachan serve`, the shipped rules with their bundled lists, the V8
 * flags of the unit) and local origins. Each student has an address of its own
 * (127.20.x.y, so per-device limits and pseudonyms apply as on a school network) and
 * makes --rate requests a second on average, at random (Poisson) times: 70 % plain HTTP
 * over a keep-alive connection, 20 % HTTPS (CONNECT, a TLS handshake with the origin, one
 * request, close), 10 % blocked sites (block page and event). For each N, after a
 * 10-second warm-up, the gateway's CPU time (utime + stime of all its processes, from
 * /proc) over --seconds, and its resident memory (VmRSS summed) at the end. The load
 * generator shares the machine: when it cannot keep up, the requests a second fall short
 * of N × --rate, and the CPU time per request is the figure to scale from.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CertificateAuthority } from '../src/tls/authority.js';
import { createCaMaterial } from '../src/tls/ca-material.js';
import { childrenOf } from './lib/proc.js';
import { startServe } from './lib/serve.js';
import { markdownTable } from './lib/stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(HERE, '../src/cli/main.js');
const RULES = path.resolve(HERE, '../../rules');
const CLOCK_TICKS = 100; // USER_HZ on Linux
const TLS_ORIGIN_ADDRESS = '127.0.0.44';

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at !== -1 && process.argv[at + 1] !== undefined ? process.argv[at + 1]! : fallback;
}

const STUDENTS = flag('students', '50,100,200').split(',').map(Number);
const RATE = Number(flag('rate', '0.5'));
const SECONDS = Number(flag('seconds', '60'));
const WORKERS = flag('workers', '1');
const PAGE = Buffer.alloc(20_000, 'x');

/** The gateway's processes: the primary and, with --workers > 1, its children. */
function processTree(root: number): number[] {
  return [root, ...childrenOf(root)];
}

function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLOCK_TICKS;
}

function rssMiB(pids: number[]): number {
  let kib = 0;
  for (const pid of pids) kib += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return kib / 1024;
}

interface Counters {
  done: number;
  errors: number;
}

function student(index: number, proxyPort: number, originPort: number, counters: Counters, stop: { stopped: boolean }): Promise<void> {
  const localAddress = `127.20.${index >> 8}.${index & 255}`;
  const agent = new Agent({ keepAlive: true, maxSockets: 2, localAddress });
  const oneRequest = (): Promise<void> => {
    const pick = Math.random();
    if (pick < 0.2) return httpsVisit(localAddress, proxyPort);
    const host = pick < 0.3 ? 'w88.com' : 'hoc.example.vn';
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: proxyPort, path: `http://${host}:${originPort}/bai/${index}`, agent, headers: { host: `${host}:${originPort}` } },
        (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode === 200 || (host === 'w88.com' && res.statusCode === 403) ? resolve() : reject(new Error(`status ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.end();
    });
  };
  return (async () => {
    while (!stop.stopped) {
      await new Promise((resolve) => setTimeout(resolve, -Math.log(1 - Math.random()) * (1000 / RATE)));
      if (stop.stopped) break;
      await oneRequest().then(
        () => void counters.done++,
        () => void counters.errors++,
      );
    }
    agent.destroy();
  })();
}

let httpsPort = 0;
function httpsVisit(localAddress: string, proxyPort: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: proxyPort, method: 'CONNECT', path: `secure.example.vn:${httpsPort}`, localAddress });
    req.on('connect', (res, socket) => {
      if (res.statusCode !== 200) return reject(new Error(`CONNECT ${res.statusCode}`));
      const tls = tlsConnect({ socket, servername: 'secure.example.vn', rejectUnauthorized: false }, () => {
        tls.write('GET /bai HTTP/1.1\r\nhost: secure.example.vn\r\nconnection: close\r\n\r\n');
      });
      tls.on('data', () => undefined);
      tls.on('end', () => resolve());
      tls.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'lachan-students-'));
  const origin = createServer((_req, res) => res.end(PAGE));
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const material = await createCaMaterial({ schoolName: 'Bench origin CA' });
  const leaf = await (await CertificateAuthority.fromPem(material.certPem, material.keyPem)).issue('secure.example.vn');
  const tlsOrigin = createHttpsServer({ cert: leaf.certPem, key: leaf.keyPem }, (_req, res) => res.end(PAGE));
  // CONNECT is allowed to port 443 only (connect_ports): the origin takes 443 on an address of its own (needs root).
  await new Promise<void>((resolve) => tlsOrigin.listen(443, TLS_ORIGIN_ADDRESS, resolve));
  httpsPort = 443;
  const originPort = (origin.address() as AddressInfo).port;
  const hostsFile = path.join(work, 'hosts');
  writeFileSync(hostsFile, `127.0.0.1 hoc.example.vn w88.com\n${TLS_ORIGIN_ADDRESS} secure.example.vn\n`);

  const gateway = await startServe({
    cli: CLI,
    rules: RULES,
    data: path.join(work, 'var'),
    certs: path.join(work, 'certs'),
    hosts: hostsFile,
    workers: Number(WORKERS),
  });
  const pids = processTree(gateway.child.pid!);
  const idle = rssMiB(pids);
  const rows: string[][] = [['0 (loaded, idle)', '–', '–', idle.toFixed(0), '–', '–', '–']];
  for (const count of STUDENTS) {
    const counters: Counters = { done: 0, errors: 0 };
    const stop = { stopped: false };
    const running = Array.from({ length: count }, (_, i) => student(i + 1, gateway.port, originPort, counters, stop));
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    const cpuBefore = cpuSeconds(pids);
    const doneBefore = counters.done;
    const started = Date.now();
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
    const elapsed = (Date.now() - started) / 1000;
    const cpu = (cpuSeconds(pids) - cpuBefore) / elapsed;
    const rss = rssMiB(pids);
    stop.stopped = true;
    await Promise.all(running);
    const perSecond = (counters.done - doneBefore) / elapsed;
    rows.push([
      String(count),
      perSecond.toFixed(0),
      String(counters.errors),
      rss.toFixed(0),
      `${(cpu * 100).toFixed(1)} %`,
      `${((cpu * 100 * 100) / count).toFixed(1)} %`,
      ((cpu * 1000) / perSecond).toFixed(2),
    ]);
    process.stdout.write(
      `${count} students: ${perSecond.toFixed(0)} req/s, ${counters.errors} errors, RSS ${rss.toFixed(0)} MiB, CPU ${(cpu * 100).toFixed(1)} % of a core\n`,
    );
  }
  process.stdout.write(
    `\n${markdownTable(['students', 'requests/s', 'errors', 'gateway RSS MiB', 'CPU (one core = 100 %)', 'CPU per 100 students', 'CPU ms per request'], rows)}\n`,
  );
  process.stdout.write(
    `\n(--rate ${RATE} requests a second per student, --workers ${WORKERS}, ${SECONDS} s measured after 10 s warm-up; node ${process.version})\n`,
  );
  await gateway.stop();
  origin.close();
  tlsOrigin.close();
  rmSync(work, { recursive: true, force: true });
}

await main();
