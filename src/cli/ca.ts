import { promises as fs } from 'node:fs';
import type { Command } from 'commander';
import type { CertificateAuthority, CertificateAuthorityOptions } from '../tls/index.js';
import { DEFAULT_CERTS_DIR, DEFAULT_SCHOOL_NAME } from '../tls/defaults.js';
import { TlsError } from '../tls/errors.js';
import { CliError, EXIT_USAGE } from './errors.js';
import { registerCaStatus } from './ca-status.js';

interface InitOptions {
  certs: string;
  name: string;
  force?: boolean;
}

interface ExportOptions {
  certs: string;
  der?: boolean;
  out?: string;
}

export function registerCa(program: Command): void {
  const ca = program.command('ca').description('CA của trường để giải mã HTTPS (chứng chỉ và khoá trong ./certs)');

  ca.command('init')
    .description('tạo CA: ca.crt (cài lên thiết bị) và ca.key (quyền 0600, chỉ ở máy chủ)')
    .option('--certs <dir>', 'thư mục của CA', `./${DEFAULT_CERTS_DIR}`)
    .option('--name <school>', 'tên trường hiện trên thiết bị, ví dụ "THCS Trạm Tấu"', DEFAULT_SCHOOL_NAME)
    .option('--force', 'thay CA đã có (mọi thiết bị phải cài lại CA mới)')
    .action(async (options: InitOptions) => {
      const { initCa } = await import('../tls/index.js');
      const { paths, certificate } = await cliErrors(() => initCa(options.certs, { schoolName: options.name, force: options.force === true }));
      process.stdout.write(
        [
          `Đã tạo CA của trường:`,
          `  chứng chỉ (cài lên thiết bị): ${paths.cert}`,
          `  khoá riêng (chỉ ở máy chủ, quyền 0600, không sao chép): ${paths.key}`,
          `  tên: ${commonName(certificate)}`,
          `  hiệu lực đến: ${new Date(certificate.validTo).toISOString().slice(0, 10)}`,
          `  SHA-256: ${certificate.fingerprint256}`,
          `Bước tiếp theo: lachan ca export --certs ${options.certs} --out lachan-ca.crt, rồi cài lên thiết bị (xem certs/README.md).`,
          '',
        ].join('\n'),
      );
    });

  ca.command('export')
    .description('xuất chứng chỉ CA để cài lên thiết bị (PEM, hoặc DER với --der) ra stdout hoặc --out; không bao giờ xuất khoá')
    .option('--certs <dir>', 'thư mục của CA', `./${DEFAULT_CERTS_DIR}`)
    .option('--der', 'dạng nhị phân DER (.cer cho Windows, Android, ChromeOS) thay cho PEM')
    .option('--out <file>', 'ghi vào tệp này thay vì stdout')
    .action(async (options: ExportOptions) => {
      const { readCaCertificate } = await import('../tls/index.js');
      const certificate = await cliErrors(() => readCaCertificate(options.certs));
      const bytes = options.der ? certificate.raw : Buffer.from(certificate.toString(), 'utf8');
      if (options.out === undefined) {
        await new Promise<void>((resolve, reject) => process.stdout.write(bytes, (error) => (error ? reject(error) : resolve())));
        return;
      }
      try {
        await fs.writeFile(options.out, bytes, { mode: 0o644 });
      } catch (error) {
        throw new CliError(`không ghi được ${options.out}: ${(error as Error).message}`, EXIT_USAGE);
      }
      process.stderr.write(`Đã ghi chứng chỉ CA (${options.der ? 'DER' : 'PEM'}) vào ${options.out}; SHA-256: ${certificate.fingerprint256}\n`);
    });

  registerCaStatus(ca);
}

/**
 * The CA for `serve --certs DIR`: null when the folder holds none, a CliError (exit 2,
 * one line) when it holds an unusable one, so the proxy never starts half-configured.
 */
export async function loadCaForCli(dir: string, options: CertificateAuthorityOptions = {}): Promise<CertificateAuthority | null> {
  const { loadCa } = await import('../tls/index.js');
  return cliErrors(() => loadCa(dir, options));
}

async function cliErrors<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof TlsError) throw new CliError(error.message, EXIT_USAGE);
    throw error;
  }
}

function commonName(certificate: { subject: string }): string {
  const line = certificate.subject.split('\n').find((entry) => entry.startsWith('CN='));
  return line === undefined ? certificate.subject : line.slice(3);
}
