import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { RulesLoadError } from '../rules/problems.js';
import type { PolicyOverlay } from '../rules/overlay.js';
import { readStoredOverlay } from '../rules/overlay-stored.js';
import type { Policy } from '../policy/engine.js';
import type { Decision } from '../policy/types.js';
import { CliError, EXIT_USAGE, rulesRefused } from './errors.js';
import { parseVietnamTime } from '../policy/schedules.js';
import { parseTypedTarget } from '../proxy/target.js';
import { phraseTableNote } from './phrase-table.js';

interface CheckOptions {
  profile?: string;
  client?: string;
  rules: string;
  data: string;
  json?: boolean;
  at?: string;
}

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('quyết định các URL mà không chạy proxy; in từng quyết định và lý do ("-": đọc mỗi dòng một URL từ stdin)')
    .option('--profile <id>', 'hồ sơ để quyết định')
    .option('--client <ip>', 'quyết định cho địa chỉ thiết bị này (hồ sơ theo mục clients của policy.yaml)')
    .option('--rules <dir>', 'thư mục quy tắc', './rules')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ trường: áp dụng cả chính sách huyện đang có ở đó', './var')
    .option('--json', 'mỗi dòng một đối tượng JSON')
    .option('--at <time>', 'quyết định vào lúc này, giờ Việt Nam "YYYY-MM-DD HH:MM" (mặc định: bây giờ)')
    .argument('<url...>', 'các URL cần quyết định, hoặc - để đọc từ stdin')
    .action(async (urls: string[], options: CheckOptions) => {
      const policy = await loadForCli(options.rules, readStoredOverlay(options.data), options.data);
      const note = phraseTableNote(policy);
      if (note !== null) process.stderr.write(`${note}\n`);
      const profile = resolveProfile(policy, options);
      const at = decisionTime(options.at);
      // The profile's schedule in force then (docs/contract.md §9): named beside each decision.
      const schedule = policy.scheduleAt(profile, at);
      let unreadable = 0;
      const decideOne = (raw: string): void => {
        const text = raw.trim();
        if (text === '') return;
        // The proxy's own parser: what is decided here is what the proxy would decide.
        const target = parseTypedTarget(text);
        if (target === null) {
          unreadable++;
          process.stderr.write(`lỗi: không phải URL: ${text}\n`);
          return;
        }
        const decision = policy.decide(profile, target.host, target.pathAndQuery, at);
        const shown = schedule === null ? decision : { ...decision, schedule };
        process.stdout.write(options.json ? `${JSON.stringify(shown)}\n` : `${describe(text, decision)}${schedule === null ? '' : `  (lịch "${schedule}")`}\n`);
      };
      for (const url of urls) {
        if (url === '-') {
          for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) decideOne(line);
        } else {
          decideOne(url);
        }
      }
      if (unreadable > 0) process.exitCode = EXIT_USAGE;
    });
}

/** Loads rules for a command; a broken rules folder is a usage error with every FILE:LINE. */
export async function loadForCli(rulesDir: string, overlay: PolicyOverlay | null = null, dataDir: string | null = null): Promise<Policy> {
  const [{ loadPolicy }, { readAppliedLists }] = await Promise.all([import('../rules/loader.js'), import('../lists/applied.js')]);
  try {
    // With a data folder, the downloaded lists in force there decide too, as in `serve`.
    return await loadPolicy(rulesDir, { overlay, lists: dataDir === null ? [] : await readAppliedLists(rulesDir, dataDir) });
  } catch (error) {
    if (error instanceof RulesLoadError) throw rulesRefused(error, rulesDir);
    throw error;
  }
}

/** `--at` in Vietnam time as ms since the epoch; now when absent. */
function decisionTime(at: string | undefined): number {
  if (at === undefined) return Date.now();
  const ms = parseVietnamTime(at);
  if (ms === null) throw new CliError(`--at "${at}": cần ngày giờ Việt Nam dạng "YYYY-MM-DD HH:MM", ví dụ "2026-12-07 12:15"`);
  return ms;
}

function resolveProfile(policy: Policy, options: CheckOptions): string {
  if (options.profile !== undefined) {
    if (policy.profile(options.profile) === undefined) {
      throw new CliError(`không có hồ sơ "${options.profile}" (các hồ sơ: ${policy.profileIds().join(', ')})`);
    }
    return options.profile;
  }
  if (options.client !== undefined) return policy.profileForAddress(options.client);
  throw new CliError('cho biết quyết định cho ai: --profile ID hoặc --client IP');
}

function describe(url: string, decision: Decision): string {
  const verdict = decision.action === 'block' ? 'BLOCK' : 'allow';
  if (decision.reason === 'default') return `${verdict}  ${url}  [${decision.profile}] no rule matched (default)`;
  const category = decision.category === null ? '' : ` ${decision.category}:`;
  const where = decision.source === null ? 'built-in' : decision.source;
  return `${verdict}  ${url}  [${decision.profile}]${category} ${decision.reason} rule "${decision.rule}" (${where})`;
}
