import type { Command } from 'commander';
import type { ListSubscription } from '../lists/config.js';
import { readState, type ListState } from '../lists/store.js';
import type { ListUpdateResult } from '../lists/update.js';
import { RulesLoadError } from '../rules/problems.js';
import { CliError, EXIT_CHECK_FAILED, EXIT_USAGE } from './errors.js';

interface ListsOptions {
  rules: string;
  data: string;
  json?: boolean;
  central?: string;
  tokenFile?: string;
}

export function registerLists(program: Command): void {
  const lists = program.command('lists').description('danh sách chặn bên ngoài đăng ký trong rules/lists.yaml');
  withFolders(lists.command('update'))
    .description('cập nhật ngay mọi danh sách đã đăng ký (mã thoát 1 khi có danh sách bị từ chối hoặc không tải được: vẫn giữ phiên bản tốt gần nhất)')
    .option('--central <url>', 'lấy danh sách từ máy chủ huyện (như `serve --central`)')
    .option('--token-file <file>', 'tệp chứa token của trường (cùng --central)')
    .action(async (options: ListsOptions) => {
      if ((options.central === undefined) !== (options.tokenFile === undefined)) throw new CliError('--central và --token-file phải đi cùng nhau');
      const [{ listsFileOf }, { updateList }] = await Promise.all([import('../lists/applied.js'), import('../lists/update.js')]);
      const subscriptions = await subscriptionsOf(options.rules);
      if (subscriptions.length === 0) {
        if (!options.json) process.stdout.write(`Không có danh sách nào được đăng ký (${listsFileOf(options.rules)}).\n`);
        return;
      }
      const central = options.central === undefined ? null : { url: options.central, tokenFile: options.tokenFile! };
      let failed = 0;
      for (const subscription of subscriptions) {
        const result = await updateList(subscription, { dataDir: options.data, central });
        if (result.outcome === 'refused' || result.outcome === 'unreachable') failed++;
        process.stdout.write(options.json ? `${JSON.stringify(result)}\n` : `${describeUpdate(result)}\n`);
      }
      if (failed > 0) process.exitCode = EXIT_CHECK_FAILED;
    });
  withFolders(lists.command('status'))
    .description('phiên bản, số mục, tuổi và lỗi gần nhất của từng danh sách')
    .action(async (options: ListsOptions) => {
      const { listsFileOf } = await import('../lists/applied.js');
      const subscriptions = await subscriptionsOf(options.rules);
      if (subscriptions.length === 0 && !options.json) {
        process.stdout.write(`Không có danh sách nào được đăng ký (${listsFileOf(options.rules)}).\n`);
        return;
      }
      const now = Date.now();
      for (const subscription of subscriptions) {
        const state = await readState(options.data, subscription.name);
        process.stdout.write(options.json ? `${JSON.stringify(statusObject(subscription, state, now))}\n` : `${describeStatus(subscription, state, now)}\n`);
      }
    });
}

function withFolders(command: Command): Command {
  return command
    .option('--rules <dir>', 'thư mục quy tắc chứa lists.yaml', './rules')
    .option('--data <dir>', 'thư mục dữ liệu nơi tải danh sách về', './var')
    .option('--json', 'mỗi dòng một đối tượng JSON');
}

async function subscriptionsOf(rulesDir: string): Promise<ListSubscription[]> {
  const [{ listsFileOf }, { readListsConfig }] = await Promise.all([import('../lists/applied.js'), import('../lists/config.js')]);
  try {
    return await readListsConfig(listsFileOf(rulesDir));
  } catch (error) {
    if (error instanceof RulesLoadError) throw new CliError(error.message, EXIT_USAGE);
    throw error;
  }
}

function statusObject(subscription: ListSubscription, state: ListState, now: number): Record<string, unknown> {
  return {
    name: subscription.name,
    category: subscription.category,
    url: subscription.url,
    format: subscription.format,
    refresh: subscription.refresh,
    version: state.version,
    entries: state.entries,
    updatedAt: iso(state.updatedAt),
    checkedAt: iso(state.checkedAt),
    ageSeconds: state.checkedAt === null ? null : Math.round((now - state.checkedAt) / 1000),
    stale: isStale(subscription, state, now),
    failures: state.failures,
    lastError: state.lastError === null ? null : { time: iso(state.lastError.time), code: state.lastError.code, message: state.lastError.message },
  };
}

/** Stale: never fetched, or not confirmed for two refresh intervals. */
function isStale(subscription: ListSubscription, state: ListState, now: number): boolean {
  return state.checkedAt === null || now - state.checkedAt > 2 * subscription.refreshMs;
}

function iso(time: number | null): string | null {
  return time === null ? null : new Date(time).toISOString();
}

/** "3 giờ", "2 ngày": an age for people. */
export function formatAge(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 1) return 'vừa xong';
  if (minutes < 60) return `${minutes} phút`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} giờ`;
  return `${Math.floor(hours / 24)} ngày`;
}

function describeUpdate(result: ListUpdateResult): string {
  const held = result.version === null ? 'chưa có phiên bản nào' : `phiên bản ${result.version}, ${result.entries} mục`;
  const from = result.via === 'central' ? ' (từ máy chủ quận/huyện)' : '';
  switch (result.outcome) {
    case 'updated':
      return `${result.name}: đã cập nhật${from} → ${held}${result.kind === 'delta' ? ' (chỉ tải phần thay đổi)' : ''}, ${result.bytes} byte`;
    case 'current':
      return `${result.name}: không đổi${from} (${held})`;
    case 'refused':
      return `${result.name}: TỪ CHỐI phiên bản mới [${result.error?.code}] ${result.error?.message}; vẫn dùng ${held}`;
    case 'unreachable':
      return `${result.name}: KHÔNG TẢI ĐƯỢC [${result.error?.code}] ${result.error?.message}; vẫn dùng ${held}`;
  }
}

function describeStatus(subscription: ListSubscription, state: ListState, now: number): string {
  const parts = [`${subscription.name} (${subscription.category}, ${subscription.format}, mỗi ${subscription.refresh})`];
  if (state.version === null) parts.push('chưa tải');
  else
    parts.push(
      `phiên bản ${state.version}`,
      `${state.entries} mục`,
      `kiểm tra ${state.checkedAt === null ? '?' : `${formatAge(now - state.checkedAt)} trước`}`,
    );
  if (isStale(subscription, state, now)) parts.push('CŨ');
  if (state.lastError !== null) parts.push(`lỗi gần nhất ${formatAge(now - state.lastError.time)} trước: [${state.lastError.code}] ${state.lastError.message}`);
  return parts.join('  ');
}
