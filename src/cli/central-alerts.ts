/**
 * `lachan central school alerts --school ID [--email a@b …] [--webhook URL] [--clear]`:
 * who hears of a school's safeguarding alerts besides its counsellors on the dashboard
 * (docs/safeguarding.md §5). Without --email, --webhook or --clear it prints them.
 */
import type { Command } from 'commander';
import type { CollectorDatabase } from '../central/store.js';
import { CliError } from './errors.js';

const EMAIL_RE = /^[^\s@<>,;]+@[^\s@<>,;]+\.[^\s@<>,;]+$/;

interface ContactOptions {
  school: string;
  email?: string[];
  webhook?: string;
  clear?: boolean;
  data: string;
  database?: string;
  json?: boolean;
}

export function registerAlertContacts(
  school: Command,
  deps: {
    defaultData: string;
    withStore: <T>(where: { readonly data: string; readonly database?: string }, run: (store: CollectorDatabase) => Promise<T>) => Promise<T>;
    databaseHelp: string;
    actor: () => string;
  },
): void {
  school
    .command('alerts')
    .description('nơi nhận cảnh báo an toàn của một trường: thư điện tử và webhook')
    .requiredOption('--school <id>', 'mã trường')
    .option('--email <address...>', 'địa chỉ thư nhận cảnh báo (thay cho danh sách cũ)')
    .option('--webhook <url>', 'địa chỉ http(s) nhận cảnh báo dạng JSON (POST); "none" để bỏ')
    .option('--clear', 'bỏ mọi địa chỉ thư và webhook')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ huyện', deps.defaultData)
    .option('--database <url>', deps.databaseHelp)
    .option('--json', 'in {"school":…,"emails":[…],"webhook":…}')
    .action(async (options: ContactOptions) => {
      for (const address of options.email ?? []) {
        if (!EMAIL_RE.test(address)) throw new CliError(`--email: "${address}" không phải địa chỉ thư`);
      }
      if (options.webhook !== undefined && options.webhook !== 'none' && !/^https?:\/\/[^\s]+$/.test(options.webhook)) {
        throw new CliError(`--webhook: "${options.webhook}" phải là địa chỉ http:// hoặc https://`);
      }
      await deps.withStore(options, async (store) => {
        if (!(await store.listSchools()).some((s) => s.id === options.school)) throw new CliError(`không có trường nào mã ${options.school}`);
        const before = await store.alerts.contacts(options.school);
        let after = before;
        if (options.clear) after = { school: options.school, emails: [], webhook: null };
        if (options.email !== undefined) after = { ...after, emails: [...new Set(options.email)] };
        if (options.webhook !== undefined) after = { ...after, webhook: options.webhook === 'none' ? null : options.webhook };
        if (after !== before) {
          await store.alerts.setContacts(after);
          store.accounts.audit(deps.actor(), 'school.alerts', `school:${options.school}`, before, after);
        }
        if (options.json) process.stdout.write(`${JSON.stringify(after)}\n`);
        else
          process.stdout.write(
            `trường ${options.school}\nthư: ${after.emails.length === 0 ? '(không có)' : after.emails.join(', ')}\nwebhook: ${after.webhook ?? '(không có)'}\n`,
          );
      });
    });
}
