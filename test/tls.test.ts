import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import tls from 'node:tls';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority, TlsError, createCaMaterial, createInterceptingTlsSocket, requestedServername, type CaMaterial } from '../src/tls/index.js';

const DAY_MS = 86_400_000;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

/** Extensions of a certificate as forge decodes them (forge cannot load EC certificates whole). */
function extensionsOf(certificate: X509Certificate): Array<Record<string, unknown>> {
  const root = forge.asn1.fromDer(certificate.raw.toString('binary'));
  const tbs = (root.value as forge.asn1.Asn1[])[0]!.value as forge.asn1.Asn1[];
  const holder = tbs.find((node) => node.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && node.type === 3)!;
  return (forge.pki as unknown as { certificateExtensionsFromAsn1(node: forge.asn1.Asn1): Array<Record<string, unknown>> }).certificateExtensionsFromAsn1(
    holder,
  );
}

function extension(certificate: X509Certificate, name: string): Record<string, unknown> {
  const found = extensionsOf(certificate).find((entry) => entry.name === name);
  if (found === undefined) throw new Error(`no ${name} extension`);
  return found;
}

let material: CaMaterial;
let caCert: X509Certificate;
let ca: CertificateAuthority;

beforeAll(async () => {
  material = await createCaMaterial({ schoolName: 'THCS Trạm Tấu' });
  caCert = new X509Certificate(material.certPem);
  ca = await CertificateAuthority.fromPem(material.certPem, material.keyPem);
});

describe('school CA', () => {
  it('is a CA named for the school, pathlen 0, signing certificates only, valid about ten years', () => {
    expect(caCert.ca).toBe(true);
    expect(caCert.subject).toContain('O=THCS Trạm Tấu');
    expect(caCert.subject).toContain('CN=THCS Trạm Tấu – Lá chắn CA');
    expect(caCert.checkIssued(caCert)).toBe(true);
    expect(caCert.verify(caCert.publicKey)).toBe(true);
    expect(extension(caCert, 'basicConstraints')).toMatchObject({ critical: true, cA: true, pathLenConstraint: 0 });
    const usage = extension(caCert, 'keyUsage');
    expect(usage).toMatchObject({ critical: true, keyCertSign: true, cRLSign: true, digitalSignature: false, keyEncipherment: false });
    const years = (Date.parse(caCert.validTo) - Date.parse(caCert.validFrom)) / (365.25 * DAY_MS);
    expect(years).toBeGreaterThan(9.9);
    expect(years).toBeLessThan(10.1);
    expect(Date.parse(caCert.validFrom)).toBeLessThan(Date.now());
  });

  it('gives every CA its own random serial', async () => {
    const other = new X509Certificate((await createCaMaterial({ schoolName: 'THCS Trạm Tấu' })).certPem);
    expect(other.serialNumber).not.toBe(caCert.serialNumber);
    expect(BigInt(`0x${caCert.serialNumber}`)).toBeGreaterThan(2n ** 64n);
  });

  it("refuses a key that is not the certificate's, and a certificate that is not a CA", async () => {
    const other = await createCaMaterial({ schoolName: 'Khác' });
    await expect(CertificateAuthority.fromPem(material.certPem, other.keyPem)).rejects.toMatchObject({ code: 'LACHAN_CA_MISMATCH' });
    const leaf = await ca.issue('example.test');
    await expect(CertificateAuthority.fromPem(leaf.certPem, leaf.keyPem)).rejects.toMatchObject({ code: 'LACHAN_CA_INVALID' });
  });
});

describe('leaf certificates', () => {
  it.each([
    ['example.test', 'DNS:example.test', 'CN=example.test'],
    ['127.0.0.1', 'IP Address:127.0.0.1', 'CN=127.0.0.1'],
    ['[::1]', 'IP Address:0:0:0:0:0:0:0:1', 'CN=::1'],
    ['Bücher.Example.', 'DNS:xn--bcher-kva.example', 'CN=xn--bcher-kva.example'],
  ])('for %s: chains to the CA, names the host, serves TLS servers for a year at most', async (host, san, subject) => {
    const leaf = new X509Certificate((await ca.issue(host)).certPem);
    expect(leaf.checkIssued(caCert)).toBe(true);
    expect(leaf.verify(caCert.publicKey)).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.subjectAltName).toBe(san);
    expect(leaf.subject).toBe(subject);
    expect(leaf.issuer).toBe(caCert.subject);
    expect(leaf.keyUsage).toEqual([SERVER_AUTH]);
    const notBefore = Date.parse(leaf.validFrom);
    const notAfter = Date.parse(leaf.validTo);
    expect(notBefore).toBeLessThanOrEqual(Date.now() - DAY_MS + 60_000);
    expect(notBefore).toBeGreaterThan(Date.now() - 2 * DAY_MS);
    expect(notAfter - notBefore).toBeLessThanOrEqual(397 * DAY_MS);
    expect(notAfter).toBeGreaterThan(Date.now() + 300 * DAY_MS);
  });

  it('carries key identifiers linking it to the CA and signature-only key usage', async () => {
    const leaf = new X509Certificate((await ca.issue('example.test')).certPem);
    const caKeyId = extension(caCert, 'subjectKeyIdentifier').subjectKeyIdentifier as string;
    expect(caKeyId).toMatch(/^[0-9a-f]{40}$/);
    const authorityKeyId = extension(leaf, 'authorityKeyIdentifier').value as string;
    // OCTET STRING of a SEQUENCE { [0] keyIdentifier }: the key id is its last 20 bytes.
    expect(forge.util.bytesToHex(authorityKeyId).slice(-40)).toBe(caKeyId);
    expect(extension(leaf, 'subjectKeyIdentifier').subjectKeyIdentifier).toMatch(/^[0-9a-f]{40}$/);
    expect(extension(leaf, 'keyUsage')).toMatchObject({ critical: true, digitalSignature: true, keyCertSign: false });
    expect(extension(leaf, 'extKeyUsage')).toMatchObject({ serverAuth: true });
  });

  it('shares one key across hosts and never outlives the CA', async () => {
    const now = new Date();
    // A CA made ten years ago less 30 days: it expires in 30 days.
    const ageing = await createCaMaterial({ schoolName: 'Cũ', now: new Date(now.getTime() - (3652 - 30) * DAY_MS) });
    const ageingCa = await CertificateAuthority.fromPem(ageing.certPem, ageing.keyPem);
    const first = await ageingCa.issue('a.example.test');
    const second = await ageingCa.issue('b.example.test');
    expect(first.keyPem).toBe(second.keyPem);
    expect(new X509Certificate(first.certPem).publicKey.equals(new X509Certificate(second.certPem).publicKey)).toBe(true);
    expect(first.notAfter.getTime()).toBe(Date.parse(new X509Certificate(ageing.certPem).validTo));
  });

  it('with RSA leaves adds keyEncipherment', async () => {
    const rsaCa = await CertificateAuthority.fromPem(material.certPem, material.keyPem, { leafKeyType: 'rsa' });
    const leaf = new X509Certificate((await rsaCa.issue('example.test')).certPem);
    expect(leaf.publicKey.asymmetricKeyType).toBe('rsa');
    expect(extension(leaf, 'keyUsage')).toMatchObject({ digitalSignature: true, keyEncipherment: true });
    expect(leaf.verify(caCert.publicKey)).toBe(true);
  });

  it('refuses hosts no certificate can name', async () => {
    for (const host of ['', 'exa mple.test', 'a..b', '-bad.test', 'x'.repeat(64) + '.test', 'fe80::1%eth0']) {
      const failure = await ca.secureContextFor(host).then(
        () => null,
        (error: unknown) => error,
      );
      expect(failure, host).toBeInstanceOf(TlsError);
      expect((failure as TlsError).code).toBe('LACHAN_TLS_BAD_HOST');
    }
  });
});

describe('secure context cache', () => {
  it('returns the same context for the same host, in any spelling', async () => {
    const local = await CertificateAuthority.fromPem(material.certPem, material.keyPem);
    const first = await local.secureContextFor('cache.example.test');
    expect(await local.secureContextFor('cache.example.test')).toBe(first);
    expect(await local.secureContextFor('CACHE.example.test.')).toBe(first);
    expect(local.cachedSecureContext('cache.example.test')).toBe(first);
    expect(local.cachedSecureContext('other.example.test')).toBeUndefined();
    expect(await local.secureContextFor('other.example.test')).not.toBe(first);
  });

  it('issues once for concurrent first requests', async () => {
    const local = await CertificateAuthority.fromPem(material.certPem, material.keyPem);
    const contexts = await Promise.all(Array.from({ length: 8 }, () => local.secureContextFor('burst.example.test')));
    expect(new Set(contexts).size).toBe(1);
    expect(local.cachedCount).toBe(1);
  });

  it('evicts the least recently used beyond its size', async () => {
    const local = await CertificateAuthority.fromPem(material.certPem, material.keyPem, { cacheSize: 2 });
    await local.secureContextFor('a.example.test');
    await local.secureContextFor('b.example.test');
    await local.secureContextFor('c.example.test');
    expect(local.cachedCount).toBe(2);
    expect(local.cachedSecureContext('a.example.test')).toBeUndefined();
  });
});

/** TLS server on loopback presenting certificates issued by `ca` per SNI. */
async function startTlsServer(options: tls.TlsOptions): Promise<{ port: number; close(): Promise<void> }> {
  const body = 'hello from example.test\n';
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer(options, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.end(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
  });
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function tlsGet(options: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(options);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => resolve(text.slice(text.indexOf('\r\n\r\n') + 4)));
    socket.on('error', reject);
  });
}

describe('TLS handshakes with issued certificates', () => {
  let sni: { port: number; close(): Promise<void> };
  let fixed: { port: number; close(): Promise<void> };

  beforeAll(async () => {
    sni = await startTlsServer({
      SNICallback: (name, callback) => ca.secureContextFor(name).then((context) => callback(null, context), callback),
    });
    const exampleContext = await ca.secureContextFor('example.test');
    // Whatever name the client asks for, this server presents example.test's certificate.
    fixed = await startTlsServer({ SNICallback: (_name, callback) => callback(null, exampleContext) });
  });
  afterAll(async () => {
    await sni.close();
    await fixed.close();
  });

  it('completes for a client trusting only the school CA', async () => {
    const text = await tlsGet({ host: '127.0.0.1', port: sni.port, servername: 'example.test', ca: [material.certPem] });
    expect(text).toBe('hello from example.test\n');
  });

  it("satisfies curl (OpenSSL's verifier) trusting only the school CA", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lachan-tls-'));
    try {
      const caFile = path.join(dir, 'ca.crt');
      writeFileSync(caFile, material.certPem);
      const run = (host: string, port: number) =>
        new Promise<{ code: number; stdout: string }>((resolve) => {
          execFile(
            'curl',
            ['--silent', '--show-error', '--cacert', caFile, '--resolve', `${host}:${port}:127.0.0.1`, `https://${host}:${port}/`],
            (error, stdout) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout }),
          );
        });
      expect(await run('example.test', sni.port)).toEqual({ code: 0, stdout: 'hello from example.test\n' });
      // 60: peer certificate not OK. example.test's certificate is no good for other.test.
      expect((await run('other.test', fixed.port)).code).toBe(60);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails when the certificate names another host', async () => {
    await expect(tlsGet({ host: '127.0.0.1', port: fixed.port, servername: 'other.test', ca: [material.certPem] })).rejects.toMatchObject({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
  });

  it('fails for a client that does not trust the school CA', async () => {
    const other = await createCaMaterial({ schoolName: 'Trường khác' });
    await expect(tlsGet({ host: '127.0.0.1', port: sni.port, servername: 'example.test', ca: [other.certPem] })).rejects.toMatchObject({
      code: 'SELF_SIGNED_CERT_IN_CHAIN',
    });
  });
});

describe('createInterceptingTlsSocket behind a CONNECT', () => {
  let port: number;
  let closeProxy: () => Promise<void>;

  beforeAll(async () => {
    // What the proxy does: answer CONNECT, then speak HTTP inside the client's TLS.
    const proxy = createHttpServer();
    const tunnels = new Set<Socket>();
    proxy.on('connect', (request: IncomingMessage, socket: Socket, head: Buffer) => {
      tunnels.add(socket);
      socket.on('close', () => tunnels.delete(socket));
      const connectHost = request.url!.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      const acceptServername = (name: string) => name !== 'refused.test';
      createInterceptingTlsSocket(socket, connectHost, ca, { head, acceptServername }).then(
        (secure) => {
          secure.on('error', () => secure.destroy());
          secure.once('data', (chunk: Buffer) => {
            const requestLine = chunk.toString('latin1').split('\r\n')[0];
            const body = `intercepted ${requestedServername(secure) ?? `(no SNI) ${connectHost}`} ${secure.alpnProtocol} ${requestLine}`;
            secure.end(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
          });
        },
        () => socket.destroy(),
      );
    });
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    port = (proxy.address() as AddressInfo).port;
    closeProxy = () =>
      new Promise((resolve) => {
        for (const socket of tunnels) socket.destroy();
        proxy.close(() => resolve());
      });
  });
  afterAll(() => closeProxy());

  async function throughProxy(target: string, options: tls.ConnectionOptions): Promise<string> {
    const raw = netConnect(port, '127.0.0.1');
    await once(raw, 'connect');
    raw.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    const [reply] = (await once(raw, 'data')) as [Buffer];
    expect(reply.toString('latin1')).toMatch(/^HTTP\/1\.1 200 /);
    const response = await new Promise<string>((resolve, reject) => {
      const secure = tls.connect({ socket: raw, ca: [material.certPem], ALPNProtocols: ['http/1.1'], ...options }, () => {
        secure.write('GET /search?q=x HTTP/1.1\r\nHost: h\r\n\r\n');
      });
      let text = '';
      secure.setEncoding('latin1');
      secure.on('data', (chunk: string) => (text += chunk));
      secure.on('end', () => {
        if (secure.authorized) resolve(text);
        else reject(new Error('connection closed before the TLS handshake completed'));
      });
      secure.on('error', (error) => {
        raw.destroy();
        reject(error);
      });
    });
    return response.slice(response.indexOf('\r\n\r\n') + 4);
  }

  it('serves a certificate for the SNI name and speaks HTTP/1.1 inside', async () => {
    expect(await throughProxy('example.test:443', { servername: 'example.test' })).toBe('intercepted example.test http/1.1 GET /search?q=x HTTP/1.1');
  });

  it('uses the CONNECT host when the client sends no SNI (IP literal)', async () => {
    // Node sends no SNI for an IP address and checks the certificate's IP SAN.
    expect(await throughProxy('127.0.0.1:443', { host: '127.0.0.1' })).toBe('intercepted (no SNI) 127.0.0.1 http/1.1 GET /search?q=x HTTP/1.1');
  });

  it('aborts the handshake for a servername the proxy refuses', async () => {
    await expect(throughProxy('example.test:443', { servername: 'refused.test' })).rejects.toThrow(/handshake|alert|socket disconnected/i);
  });

  it('is refused by a client that does not trust the school CA', async () => {
    const other = await createCaMaterial({ schoolName: 'Trường khác' });
    await expect(throughProxy('example.test:443', { servername: 'example.test', ca: [other.certPem] })).rejects.toMatchObject({
      code: 'SELF_SIGNED_CERT_IN_CHAIN',
    });
  });
});
