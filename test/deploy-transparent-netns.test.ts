import { spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSchoolNetwork, lachan, originAuthority, REPO_ROOT, type SchoolNetwork } from './harness/index.js';

// Transparent mode for real: deploy/install.sh lays lachan out under a temporary root;
// a gateway namespace loads the nftables rules it rendered from deploy/ and runs the
// installed unit's ExecStart; a student namespace routed through the gateway reaches
// origins behind it with curl and UDP, over IPv4 and IPv6. The shipped rules decide
// (default profile tieu-hoc): olm.vn is allowed, w88.com is gambling, cloudflare-ech.com
// is the Encrypted Client Hello outer name (deploy/README.md).

const ALLOWED = 'olm.vn';
const GAMBLING = 'w88.com';
const ECH_OUTER = 'cloudflare-ech.com';

/** The origin: HTTP 80, HTTPS 443, HTTP 8080 (a port lachan leaves alone), UDP echo on 443 and 53. */
const ORIGIN_SCRIPT = `
import { createServer } from 'node:http';
import { createServer as createTls } from 'node:https';
import { createSocket } from 'node:dgram';
const [cert, key] = [process.env.ORIGIN_CERT, process.env.ORIGIN_KEY];
const answer = (label) => (req, res) => res.end(label + ' ' + req.headers.host + ' from ' + req.socket.remoteAddress.replace(/^::ffff:/, ''));
const listening = [
  [createServer(answer('http')), 80], [createServer(answer('direct')), 8080], [createTls({ cert, key }, answer('https')), 443],
].map(([server, port]) => new Promise((resolve) => server.listen(port, '::', resolve)));
for (const port of [443, 53]) {
  const socket = createSocket({ type: 'udp6' });
  socket.on('message', (message, from) => socket.send('udp ' + port + ' ' + message, from.port, from.address));
  listening.push(new Promise((resolve) => socket.bind(port, '::', resolve)));
}
Promise.all(listening).then(() => console.log('ready'));
`;

/** One datagram to HOST:PORT; prints the answer, or "no answer" after two seconds. */
const UDP_PROBE = `
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
const [host, port] = process.argv.slice(1);
const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
socket.on('message', (m) => { console.log(String(m)); process.exit(0); });
socket.send('ping', Number(port), host);
setTimeout(() => { console.log('no answer'); process.exit(0); }, 2000);
`;

let network: SchoolNetwork;
let root: string;
let originCaFile: string;
const processes: ChildProcess[] = [];
let gatewayOutput = '';

function waitForOutput(child: ChildProcess, text: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`no "${text}" within ${timeoutMs} ms: ${seen}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString();
      if (seen.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${seen}`)));
  });
}

/** The installed unit's command, its paths moved under the install root. */
function installedServeCommand(): string[] {
  const unit = readFileSync(path.join(root, 'etc/systemd/system/lachan.service'), 'utf8').replace(/\\\n/g, ' ');
  const exec = /^ExecStart=(.*)$/m.exec(unit)![1]!;
  const options = /^LACHAN_SERVE_OPTIONS="(.*)"$/m.exec(readFileSync(path.join(root, 'etc/lachan/lachan.env'), 'utf8'))![1]!;
  return exec
    .replace('$LACHAN_SERVE_OPTIONS', options)
    .split(/\s+/)
    .filter((word) => word !== '')
    .map((word) => word.replace(/^\/(opt\/lachan|etc\/lachan|var\/lib\/lachan)/, `${root}/$1`));
}

type Family = 4 | 6;
const originAddress = (family: Family): string => (family === 4 ? network.address.origin4 : `[${network.address.origin6}]`);

/** curl from the student's device to NAME on the origin's address, as if DNS had answered it. */
async function studentCurl(family: Family, url: string, extra: string[] = []): Promise<{ code: number; status: number; headers: string; body: string }> {
  const { hostname, port, protocol } = new URL(url);
  const target = `${hostname}:${port || (protocol === 'https:' ? '443' : '80')}:${originAddress(family)}`;
  const result = await network.run(network.client, 'curl', ['-s', '-i', '--max-time', '10', '--resolve', target, '-w', '\n%{http_code}', ...extra, url]);
  const cut = result.stdout.lastIndexOf('\n');
  const response = result.stdout.slice(0, cut);
  const split = response.indexOf('\r\n\r\n');
  return { code: result.code, status: Number(result.stdout.slice(cut + 1)), headers: response.slice(0, split), body: response.slice(split + 4) };
}

async function udpProbe(namespace: string, host: string, port: number): Promise<string> {
  const result = await network.run(namespace, process.execPath, ['--input-type=module', '-e', UDP_PROBE, host, String(port)]);
  return result.stdout.trim();
}

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'lachan-netns-'));
  network = createSchoolNetwork();
  const install = spawnSync(
    'bash',
    [
      path.join(REPO_ROOT, 'deploy/install.sh'),
      '--root',
      root,
      '--transparent',
      network.studentInterface,
      '--student-nets',
      '10.77.1.0/24',
      '--student-nets6',
      'fd77:1::/64',
    ],
    { encoding: 'utf8' },
  );
  if (install.status !== 0) throw new Error(`install.sh failed: ${install.stderr}`);
  const loaded = await network.run(network.gateway, 'nft', ['-f', path.join(root, 'etc/lachan/nftables-transparent.nft')]);
  if (loaded.code !== 0) throw new Error(`nft refused the installed rules: ${loaded.stderr}`);

  const { ca, certPem } = await originAuthority();
  const leaf = await ca.issue(ALLOWED);
  originCaFile = path.join(root, 'origin-ca.pem');
  writeFileSync(originCaFile, certPem);
  const origin = network.spawn(network.origin, 'env', [
    `ORIGIN_CERT=${leaf.certPem}`,
    `ORIGIN_KEY=${leaf.keyPem}`,
    process.execPath,
    '--input-type=module',
    '-e',
    ORIGIN_SCRIPT,
  ]);
  processes.push(origin);
  await waitForOutput(origin, 'ready', 20_000);

  // The gateway's resolver answers the test's names with the origin, as the school DNS would.
  appendFileSync(path.join(root, 'etc/lachan/hosts'), [ALLOWED, GAMBLING, ECH_OUTER].map((name) => `${network.address.origin4} ${name}\n`).join(''));
  const serve = installedServeCommand();
  const gateway = network.spawn(network.gateway, serve[0]!, [...serve.slice(1), '--workers', '1']);
  gateway.stdout!.on('data', (chunk: Buffer) => (gatewayOutput += chunk.toString()));
  processes.push(gateway);
  await waitForOutput(gateway, '"msg":"listening"', 90_000);
}, 240_000);

afterAll(async () => {
  for (const child of processes) child.kill('SIGKILL');
  await Promise.all(
    processes.map((child) => (child.exitCode === null && child.signalCode === null ? new Promise((resolve) => child.once('exit', resolve)) : null)),
  );
  network?.destroy();
  if (root !== undefined) rmSync(root, { recursive: true, force: true });
});

describe.each([4, 6] as const)('transparent mode through the gateway, IPv%i', { timeout: 90_000 }, (family) => {
  it('lets an allowed site through the proxy: the origin sees the gateway, not the device', async () => {
    const http = await studentCurl(family, `http://${ALLOWED}/bai-hoc`);
    expect(http.status).toBe(200);
    expect(http.body).toBe(`http ${ALLOWED} from ${network.address.gatewayUpstream4}`);
    const https = await studentCurl(family, `https://${ALLOWED}/bai-hoc`, ['--cacert', originCaFile]);
    expect(https.code).toBe(0);
    expect(https.body).toBe(`https ${ALLOWED} from ${network.address.gatewayUpstream4}`);
  });

  it('blocks HTTP by its Host with the block page', async () => {
    const blocked = await studentCurl(family, `http://${GAMBLING}/`);
    expect(blocked.status).toBe(403);
    expect(blocked.headers).toMatch(/^x-lachan-block: gambling$/im);
    expect(blocked.body).toContain('<html lang="vi">');
    expect(blocked.body).toContain(GAMBLING);
  });

  it('refuses HTTPS by its SNI (no school CA on this gateway), and records the block', async () => {
    const host = family === 4 ? GAMBLING : `m.${GAMBLING}`;
    const blocked = await studentCurl(family, `https://${host}/`, ['-k']);
    expect(blocked.code).not.toBe(0);
    expect(blocked.status).toBe(0);
    let events = '';
    for (let attempt = 0; attempt < 40 && !events.includes(`"host":"${host}"`); attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      events = lachan(['logs', '--data', path.join(root, 'var/lib/lachan'), '--json']).stdout;
    }
    expect(events).toContain(`"host":"${host}"`);
  });

  it('refuses the Encrypted Client Hello outer name, so the browser cannot hide the site', async () => {
    const ech = await studentCurl(family, `https://${ECH_OUTER}/`, ['-k']);
    expect(ech.code).not.toBe(0);
    expect(ech.status).toBe(0);
  });

  it('drops QUIC (UDP 443), which the origin does answer from the gateway itself', async () => {
    const host = family === 4 ? network.address.origin4 : network.address.origin6;
    expect(await udpProbe(network.gateway, host, 443)).toBe('udp 443 ping');
    expect(await udpProbe(network.client, host, 443)).toBe('no answer');
  });

  it('leaves everything else alone: DNS over UDP 53 and other TCP ports reach the origin from the device itself', async () => {
    const host = family === 4 ? network.address.origin4 : network.address.origin6;
    expect(await udpProbe(network.client, host, 53)).toBe('udp 53 ping');
    const direct = await studentCurl(family, `http://${ALLOWED}:8080/`);
    expect(direct.status).toBe(200);
    expect(direct.body).toBe(`direct ${ALLOWED}:8080 from ${family === 4 ? network.address.client4 : network.address.client6}`);
  });
});
