import { constants, promises as fs } from 'node:fs';
import { randomBytes, X509Certificate } from 'node:crypto';
import path from 'node:path';
import { CertificateAuthority, type CertificateAuthorityOptions } from './authority.js';
import { createCaMaterial, type CaMaterial } from './ca-material.js';
import { TlsError } from './errors.js';

/** File names under the certs folder (docs/contract.md §2: `lachan ca init [--certs DIR]`). */
export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';

export interface CaPaths {
  readonly cert: string;
  readonly key: string;
}

export function caPaths(dir: string): CaPaths {
  return { cert: path.join(dir, CA_CERT_FILE), key: path.join(dir, CA_KEY_FILE) };
}

export interface InitCaOptions {
  readonly schoolName: string;
  /** Replace an existing CA (devices that trust the old one will warn until they get the new one). */
  readonly force?: boolean;
}

/**
 * Creates `ca.crt` and `ca.key` under `dir`. The key file is created with mode 0600 by
 * open(2) itself, so it is never readable by others, not even for an instant; both files
 * are written beside their final names and renamed into place, so a crash leaves either
 * the old CA or the new one, never half of each.
 */
export async function initCa(dir: string, options: InitCaOptions): Promise<{ paths: CaPaths; certificate: X509Certificate }> {
  const paths = caPaths(dir);
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  if (!options.force) {
    for (const file of [paths.cert, paths.key]) {
      if (await exists(file)) {
        throw new TlsError('LACHAN_CA_EXISTS', `${file} đã có; CA mới làm mọi thiết bị đã cài CA cũ báo lỗi (thêm --force để thay, xem certs/README.md mục 5)`);
      }
    }
  }
  const material: CaMaterial = await createCaMaterial({ schoolName: options.schoolName });
  const suffix = `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const keyTemp = paths.key + suffix;
  const certTemp = paths.cert + suffix;
  try {
    await writeNew(keyTemp, material.keyPem, 0o600);
    await writeNew(certTemp, material.certPem, 0o644);
    await fs.rename(keyTemp, paths.key);
    await fs.rename(certTemp, paths.cert);
  } finally {
    await fs.rm(keyTemp, { force: true });
    await fs.rm(certTemp, { force: true });
  }
  return { paths, certificate: new X509Certificate(material.certPem) };
}

/** The CA certificate of `dir` as PEM; what devices install. Never touches the key. */
export async function readCaCertificate(dir: string): Promise<X509Certificate> {
  const { cert } = caPaths(dir);
  let pem: string;
  try {
    pem = await fs.readFile(cert, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new TlsError('LACHAN_CA_MISSING', `chưa có CA trong ${dir} (không có ${cert}; tạo bằng "lachan ca init --certs ${dir}")`);
    }
    throw new TlsError('LACHAN_CA_UNREADABLE', `không đọc được ${cert}: ${(error as Error).message}`, { cause: error });
  }
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw new TlsError('LACHAN_CA_INVALID', `${cert} không phải chứng chỉ: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Loads the CA of `dir` for `serve --certs DIR`. Returns null when the folder holds no
 * CA at all (the proxy then refuses blocked CONNECTs with a plain 403). Throws a
 * TlsError when the CA is there but unusable: only one of the two files, a key that
 * group or others may read, a key that does not match the certificate, an expired CA.
 */
export async function loadCa(dir: string, options: CertificateAuthorityOptions = {}): Promise<CertificateAuthority | null> {
  const paths = caPaths(dir);
  const [hasCert, hasKey] = await Promise.all([exists(paths.cert), exists(paths.key)]);
  if (!hasCert && !hasKey) return null;
  if (!hasCert || !hasKey) {
    const missing = hasCert ? paths.key : paths.cert;
    throw new TlsError('LACHAN_CA_INCOMPLETE', `CA trong ${dir} thiếu ${missing} (khôi phục tệp đó, hoặc tạo CA mới bằng "lachan ca init --force")`);
  }
  let keyPem: string;
  let certPem: string;
  try {
    const handle = await fs.open(paths.key, constants.O_RDONLY);
    try {
      // Mode of the file actually opened, not of whatever the path names a moment later.
      const { mode } = await handle.stat();
      if ((mode & 0o077) !== 0) {
        throw new TlsError(
          'LACHAN_CA_KEY_PERMISSIONS',
          `${paths.key} để người khác đọc được (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); ai có khoá này giả mạo được mọi trang web với thiết bị của trường. Chạy "chmod 600 ${paths.key}"`,
        );
      }
      keyPem = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
    certPem = await fs.readFile(paths.cert, 'utf8');
  } catch (error) {
    if (error instanceof TlsError) throw error;
    throw new TlsError('LACHAN_CA_UNREADABLE', `không đọc được CA trong ${dir}: ${(error as Error).message}`, { cause: error });
  }
  return CertificateAuthority.fromPem(certPem, keyPem, options);
}

async function writeNew(file: string, content: string, mode: number): Promise<void> {
  // 'wx': fail rather than follow a file (or symlink) someone placed at the temp name.
  const handle = await fs.open(file, 'wx', mode);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
