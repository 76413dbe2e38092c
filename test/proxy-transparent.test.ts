import { execFile } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lachan, originAuthority, type RunningGateway, startGateway, startHttpOrigin } from './harness/index.js';

// Transparent HTTPS dials port 443 of the name in the SNI: the origin stands on a
// loopback address of its own at 443 (CI runs as root, as the gateway does).
const TLS_ORIGIN_ADDRESS = '127.0.0.3';

let origin: { server: Server; port: number };
let tlsOrigin: Server;
let proxy: RunningGateway;
let originCaFile: string;

function direct(url: string, connectTo: string, extra: string[] = []): Promise<{ code: number; status: number; body: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-s', '--max-time', '10', '--connect-to', connectTo, '-w', '\n%{http_code}', ...extra, url], { encoding: 'utf8' }, (error, stdout) => {
      const cut = stdout.lastIndexOf('\n');
      resolve({ code: error === null ? 0 : Number((error as { code?: number }).code ?? 1), status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) });
    });
  });
}

beforeAll(async () => {
  origin = await startHttpOrigin((req, res) => res.end(`origin saw ${req.headers.host}${req.url}`));
  const { ca, certPem } = await originAuthority();
  const leaf = await ca.issue('secure.test');
  originCaFile = path.join(mkdtempSync(path.join(tmpdir(), 'lachan-transparent-')), 'origin-ca.pem');
  writeFileSync(originCaFile, certPem);
  tlsOrigin = createHttpsServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => res.end(`tls origin ${req.url}`));
  await new Promise<void>((resolve) => tlsOrigin.listen(443, TLS_ORIGIN_ADDRESS, resolve));
  proxy = await startGateway({
    rules: {
      'policy.yaml': 'version: 1\ndefault_profile: hs\nprofiles:\n  hs:\n    name: "Học sinh"\n    block_categories: [gambling]\n',
      'categories/gambling/domains': 'bet.test\n',
    },
    hosts: `127.0.0.1 origin.test bet.test\n${TLS_ORIGIN_ADDRESS} secure.test\n`,
    args: ['--transparent-http', '0', '--transparent-https', '0'],
  });
});

afterAll(async () => {
  await proxy?.stop();
  origin?.server.close();
  tlsOrigin?.close();
});

describe('transparent mode (the client does not know of a proxy)', () => {
  it('forwards HTTP by its Host header and blocks with the block page', async () => {
    const httpPort = proxy.logs.find((l) => l.msg === 'listening')!.transparentHttpPort as number;
    const allowed = await direct(`http://origin.test:${origin.port}/bai?x=1`, `origin.test:${origin.port}:127.0.0.1:${httpPort}`);
    expect(allowed.status).toBe(200);
    expect(allowed.body).toBe(`origin saw origin.test:${origin.port}/bai?x=1`);
    const blocked = await direct(`http://bet.test:${origin.port}/`, `bet.test:${origin.port}:127.0.0.1:${httpPort}`);
    expect(blocked.status).toBe(403);
    expect(blocked.body).toContain('Trang này đã bị chặn');
  });

  it('decides HTTPS on the SNI: an allowed name is tunnelled to the address the proxy resolves, untouched', async () => {
    const httpsPort = proxy.logs.find((l) => l.msg === 'listening')!.transparentHttpsPort as number;
    const allowed = await direct('https://secure.test/hello', `secure.test:443:127.0.0.1:${httpsPort}`, ['--cacert', originCaFile]);
    expect(allowed.code).toBe(0);
    expect(allowed.body).toBe('tls origin /hello');
  });

  it('closes a blocked SNI and records the block', async () => {
    const httpsPort = proxy.logs.find((l) => l.msg === 'listening')!.transparentHttpsPort as number;
    // A host no earlier test blocked: a repeat visit to bet.test would be folded into its first event.
    const blocked = await direct('https://sni.bet.test/', `sni.bet.test:443:127.0.0.1:${httpsPort}`, ['-k']);
    expect(blocked.code).not.toBe(0);
    let events = '';
    for (let attempt = 0; attempt < 20 && !events.includes('sni.bet.test'); attempt++) {
      await new Promise((r) => setTimeout(r, 250));
      events = lachan(['logs', '--data', proxy.dataDir, '--json']).stdout;
    }
    expect(events).toContain('"host":"sni.bet.test","path":"/","method":"CONNECT"');
  });
});
