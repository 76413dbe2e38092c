import type { Command } from 'commander';
import { RulesLoadError } from '../rules/problems.js';
import type { Policy } from '../policy/engine.js';
import type { InterceptMode } from '../policy/clients.js';
import { DEFAULT_CERTS_DIR } from '../tls/defaults.js';
import { TlsError } from '../tls/errors.js';
import { DeviceTrust, trustsCa } from '../proxy/device-trust.js';
import { deviceTrustPath, readDeviceTrust } from '../proxy/device-trust-file.js';
import { CliError, rulesRefused } from './errors.js';

interface StatusOptions {
  rules: string;
  data: string;
  certs: string;
  json?: boolean;
}

/** One `clients:` range (or the addresses no range names) and what its devices showed. */
export interface RangeStatus {
  /** null: addresses in no range. */
  readonly cidr: string | null;
  readonly profile: string;
  readonly intercept: InterceptMode;
  /** Devices whose latest probe went through the school CA. */
  readonly trusted: readonly string[];
  /** Devices seen on HTTPS that have not shown trust (refused the probe, or never loaded it). */
  readonly notTrusted: readonly string[];
  /** Of notTrusted: devices whose TLS refused the school CA's certificate. */
  readonly refused: readonly string[];
}

const MODE_TEXT: Readonly<Record<InterceptMode, string>> = {
  always: 'luôn giải mã',
  learned: 'chỉ thiết bị đã tin cậy CA',
  never: 'không giải mã',
};

export function registerCaStatus(ca: Command): void {
  ca.command('status')
    .description('từng dải máy: chế độ giải mã, số thiết bị đã tin CA, số thiết bị chưa tin')
    .option('--rules <dir>', 'thư mục quy tắc (policy.yaml ghi các dải máy và chế độ intercept)', './rules')
    .option('--data <dir>', 'thư mục dữ liệu của lachan serve', './var')
    .option('--certs <dir>', 'thư mục của CA', `./${DEFAULT_CERTS_DIR}`)
    .option('--json', 'một đối tượng JSON')
    .action(async (options: StatusOptions) => {
      const policy = await loadPolicyForStatus(options.rules);
      const fingerprint = await caFingerprint(options.certs);
      const trust = new DeviceTrust(readDeviceTrust(options.data));
      const stale = trust.ca !== null && fingerprint !== null && trust.ca !== fingerprint;
      // Trust learned under another CA says nothing about this one.
      trust.setCa(fingerprint);
      const ranges = rangeStatuses(policy, trust);
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ ca: fingerprint === null ? null : { fingerprint }, file: deviceTrustPath(options.data), ranges })}\n`);
        return;
      }
      process.stdout.write(renderStatus(ranges, fingerprint, stale));
    });
}

async function loadPolicyForStatus(rulesDir: string): Promise<Policy> {
  const { loadPolicy } = await import('../rules/loader.js');
  try {
    return await loadPolicy(rulesDir);
  } catch (error) {
    if (error instanceof RulesLoadError) throw rulesRefused(error, rulesDir);
    throw error;
  }
}

async function caFingerprint(certsDir: string): Promise<string | null> {
  const { readCaCertificate } = await import('../tls/index.js');
  try {
    return (await readCaCertificate(certsDir)).fingerprint256;
  } catch (error) {
    if (error instanceof TlsError && error.code === 'LACHAN_CA_MISSING') return null;
    throw new CliError(error instanceof Error ? error.message : String(error));
  }
}

/** Devices grouped by the range policy.yaml puts them in, ranges in file order, then the rest. */
export function rangeStatuses(policy: Policy, trust: DeviceTrust): RangeStatus[] {
  const ranges = new Map<
    string | null,
    { cidr: string | null; profile: string; intercept: InterceptMode; trusted: string[]; notTrusted: string[]; refused: string[] }
  >();
  // The range of no address: the defaults (profile and mode of addresses no range names).
  const fallback = policy.clientRange('');
  for (const rule of policy.rules.clients) {
    ranges.set(rule.cidr, {
      cidr: rule.cidr,
      profile: rule.profile,
      intercept: rule.intercept ?? fallback.intercept,
      trusted: [],
      notTrusted: [],
      refused: [],
    });
  }
  ranges.set(null, { cidr: null, profile: fallback.profile, intercept: fallback.intercept, trusted: [], notTrusted: [], refused: [] });
  const devices = Object.entries(trust.snapshot().devices).sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }));
  for (const [address, record] of devices) {
    const entry = ranges.get(policy.clientRange(address).cidr) ?? ranges.get(null)!;
    if (trustsCa(record)) entry.trusted.push(address);
    else {
      entry.notTrusted.push(address);
      if (record.refused !== undefined) entry.refused.push(address);
    }
  }
  return [...ranges.values()];
}

function renderStatus(ranges: readonly RangeStatus[], fingerprint: string | null, stale: boolean): string {
  const lines: string[] = [];
  lines.push(fingerprint === null ? 'Chưa có CA (lachan ca init): không thiết bị nào bị giải mã HTTPS.' : `CA của trường: SHA-256 ${fingerprint}`);
  if (stale) lines.push('Các thiết bị đã tin cậy một CA trước đây: coi như chưa tin cậy CA này cho tới khi tải lại trang chặn hoặc trang hướng dẫn.');
  const header = ['dải máy', 'hồ sơ', 'giải mã HTTPS', 'đã tin cậy', 'chưa tin cậy', 'từ chối CA'];
  const rows = ranges.map((r) => [
    r.cidr ?? '(địa chỉ khác)',
    r.profile,
    `${r.intercept} (${MODE_TEXT[r.intercept]})`,
    String(r.trusted.length),
    String(r.notTrusted.length),
    String(r.refused.length),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  for (const row of [header, ...rows])
    lines.push(
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    );
  lines.push('Đổi chế độ một dải: "intercept: always | learned | never" ở mục clients của policy.yaml (xem certs/README.md).');
  return `${lines.join('\n')}\n`;
}
