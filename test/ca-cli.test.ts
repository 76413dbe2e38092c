import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCa } from '../src/tls/index.js';
import { CLI, REPO_ROOT } from './harness/index.js';

function lachan(args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: REPO_ROOT });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr.toString('utf8') };
}

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'lachan-ca-'));
  dirs.push(dir);
  return dir;
}
afterAll(() =>
  dirs.forEach((dir) => {
    rmSync(dir, { recursive: true, force: true });
  }),
);

function mode(file: string): number {
  return statSync(file).mode & 0o777;
}

/** A certs folder with a CA made by the CLI. */
function initCerts(name = 'THCS Trạm Tấu'): string {
  const certs = path.join(tempDir(), 'certs');
  const result = lachan(['ca', 'init', '--certs', certs, '--name', name]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return certs;
}

describe('lachan ca init', () => {
  it('creates ca.crt and a ca.key only its owner can read, and never prints the key', () => {
    const certs = initCerts();
    const keyPem = readFileSync(path.join(certs, 'ca.key'), 'utf8');
    expect(keyPem).toContain('-----BEGIN PRIVATE KEY-----');
    expect(mode(path.join(certs, 'ca.key'))).toBe(0o600);
    expect(mode(path.join(certs, 'ca.crt')) & 0o044).toBe(0o044); // devices' installers need it readable
    const certificate = new X509Certificate(readFileSync(path.join(certs, 'ca.crt')));
    expect(certificate.ca).toBe(true);
    expect(certificate.subject).toContain('O=THCS Trạm Tấu');
    const result = lachan(['ca', 'export', '--certs', certs]);
    const printed = result.stdout.toString('utf8');
    expect(printed).not.toContain('PRIVATE KEY');
    const keyBody = keyPem.split('\n')[1]!;
    expect(printed).not.toContain(keyBody);
  });

  it('prints where the files are and the fingerprint to compare on devices', () => {
    const certs = path.join(tempDir(), 'certs');
    const result = lachan(['ca', 'init', '--certs', certs, '--name', 'Tiểu học Hoa Sen']);
    expect(result.code).toBe(0);
    const fingerprint = new X509Certificate(readFileSync(path.join(certs, 'ca.crt'))).fingerprint256;
    const out = result.stdout.toString('utf8');
    expect(out).toContain(fingerprint);
    expect(out).toContain(path.join(certs, 'ca.crt'));
    expect(out).toContain('Tiểu học Hoa Sen');
    expect(out).not.toContain('PRIVATE KEY');
  });

  it('refuses to replace an existing CA without --force, and leaves it intact', () => {
    const certs = initCerts();
    const before = readFileSync(path.join(certs, 'ca.key'));
    const result = lachan(['ca', 'init', '--certs', certs]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^lỗi: .*đã có.*--force.*\n$/);
    expect(result.stderr.split('\n')).toHaveLength(2);
    expect(readFileSync(path.join(certs, 'ca.key')).equals(before)).toBe(true);
  });

  it('replaces it with --force, with a fresh key created 0600 whatever the old file allowed', () => {
    const certs = initCerts();
    const keyFile = path.join(certs, 'ca.key');
    const before = readFileSync(keyFile);
    chmodSync(keyFile, 0o644);
    const result = lachan(['ca', 'init', '--certs', certs, '--force']);
    expect(result.code).toBe(0);
    expect(readFileSync(keyFile).equals(before)).toBe(false);
    expect(mode(keyFile)).toBe(0o600);
  });
});

describe('lachan ca export', () => {
  it('writes the PEM certificate to stdout', () => {
    const certs = initCerts();
    const onDisk = new X509Certificate(readFileSync(path.join(certs, 'ca.crt')));
    const result = lachan(['ca', 'export', '--certs', certs]);
    expect(result.code).toBe(0);
    const text = result.stdout.toString('utf8');
    expect(text).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]*-----END CERTIFICATE-----\n$/);
    expect(new X509Certificate(text).fingerprint256).toBe(onDisk.fingerprint256);
  });

  it('writes DER with --der, to a file with --out', () => {
    const certs = initCerts();
    const onDisk = new X509Certificate(readFileSync(path.join(certs, 'ca.crt')));
    const stdoutDer = lachan(['ca', 'export', '--certs', certs, '--der']);
    expect(stdoutDer.code).toBe(0);
    expect(stdoutDer.stdout[0]).toBe(0x30); // a DER SEQUENCE, not PEM text
    expect(new X509Certificate(stdoutDer.stdout).fingerprint256).toBe(onDisk.fingerprint256);

    const out = path.join(tempDir(), 'lachan-ca.cer');
    const toFile = lachan(['ca', 'export', '--certs', certs, '--der', '--out', out]);
    expect(toFile.code).toBe(0);
    expect(toFile.stdout.length).toBe(0);
    expect(readFileSync(out).equals(onDisk.raw)).toBe(true);
  });

  it('fails with one line naming "ca init" when there is no CA', () => {
    const result = lachan(['ca', 'export', '--certs', path.join(tempDir(), 'none')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^lỗi: chưa có CA trong .*lachan ca init.*\n$/);
  });
});

describe('loadCa (serve --certs DIR)', () => {
  it('returns null when the folder holds no CA', async () => {
    expect(await loadCa(tempDir())).toBeNull();
    expect(await loadCa(path.join(tempDir(), 'missing'))).toBeNull();
  });

  it('loads a CA made by the CLI and issues leaves that chain to the exported certificate', async () => {
    const certs = initCerts();
    const ca = await loadCa(certs);
    expect(ca).not.toBeNull();
    const exported = new X509Certificate(lachan(['ca', 'export', '--certs', certs, '--der']).stdout);
    const leaf = new X509Certificate((await ca!.issue('olm.vn')).certPem);
    expect(leaf.checkIssued(exported)).toBe(true);
    expect(leaf.verify(exported.publicKey)).toBe(true);
  });

  it('refuses a key that group or others may read, saying how to fix it', async () => {
    const certs = initCerts();
    const keyFile = path.join(certs, 'ca.key');
    for (const loose of [0o640, 0o604, 0o644]) {
      chmodSync(keyFile, loose);
      const failure = await loadCa(certs).then(
        () => null,
        (error: unknown) => error as Error & { code: string },
      );
      expect(failure?.code).toBe('LACHAN_CA_KEY_PERMISSIONS');
      expect(failure?.message).toContain(`chmod 600 ${keyFile}`);
      expect(failure?.message).toContain(`mode 0${loose.toString(8)}`);
    }
    chmodSync(keyFile, 0o600);
    expect(await loadCa(certs)).not.toBeNull();
  });

  it('refuses half a CA and a key of another CA', async () => {
    const certs = initCerts();
    const other = initCerts('Trường khác');
    copyFileSync(path.join(other, 'ca.key'), path.join(certs, 'ca.key'));
    chmodSync(path.join(certs, 'ca.key'), 0o600);
    await expect(loadCa(certs)).rejects.toMatchObject({ code: 'LACHAN_CA_MISMATCH' });
    unlinkSync(path.join(certs, 'ca.key'));
    await expect(loadCa(certs)).rejects.toMatchObject({ code: 'LACHAN_CA_INCOMPLETE', message: expect.stringMatching(/thiếu .*ca\.key/) });
    writeFileSync(path.join(certs, 'ca.crt'), 'not a certificate\n');
    copyFileSync(path.join(other, 'ca.key'), path.join(certs, 'ca.key'));
    chmodSync(path.join(certs, 'ca.key'), 0o600);
    await expect(loadCa(certs)).rejects.toMatchObject({ code: 'LACHAN_CA_INVALID' });
  });
});
