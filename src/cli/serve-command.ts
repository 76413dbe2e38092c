/*
 * `lachan serve` and `lachan users` as the command line knows them: their options and
 * help. What they run is loaded when they run (serve.ts: the proxy, its TLS, its
 * HTTP client), so that every other command starts without it.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { DEFAULT_STAFF_PROFILES } from '../classroom/staff-profiles.js';
import { DEFAULT_LIMITS } from '../proxy/limits.js';
import { CliError } from './errors.js';
import type { ServeOptions } from './serve.js';

export function registerServe(program: Command): void {
  registerUsers(program);
  program
    .command('serve')
    .description('chạy proxy lọc nội dung')
    .option('--port <port>', 'cổng proxy', '3128')
    .option('--host <address>', 'địa chỉ lắng nghe', '0.0.0.0')
    .option('--rules <dir>', 'thư mục quy tắc', './rules')
    .option('--data <dir>', 'thư mục dữ liệu (nhật ký chặn, khoá, thiết bị tin CA)', './var')
    .option('--central-key <file>', 'khoá công khai Ed25519 của máy chủ huyện (PEM): chỉ áp dụng chính sách huyện có chữ ký đúng')
    .option('--policy-interval <seconds>', 'bao lâu (giây) hỏi máy chủ huyện chính sách một lần', '60')
    .option('--dns-server <address>', 'máy chủ DNS (dùng nhiều lần được; mặc định: của hệ thống)', (value: string, previous: string[] = []) => [
      ...previous,
      value,
    ])
    .option('--transparent-http <port>', 'nhận thêm lưu lượng cổng 80 được chuyển hướng (chế độ trong suốt, theo Host)')
    .option('--transparent-https <port>', 'nhận thêm lưu lượng cổng 443 được chuyển hướng (chế độ trong suốt, theo SNI của TLS)')
    .option(
      '--certs <dir>',
      'CA của trường để giải mã HTTPS (lachan ca init; nhận CA mới không cần khởi động lại); không có CA thì trang HTTPS bị chặn chỉ nhận 403',
      './certs',
    )
    .option('--hosts-file <file>', 'tên máy gán địa chỉ trước DNS, dạng /etc/hosts')
    .option('--central <url>', 'máy chủ huyện nhận các sự kiện chặn')
    .option('--school <id>', 'mã của trường ở máy chủ huyện')
    .option('--token-file <file>', 'tệp chứa token của trường')
    .option('--ship-interval <seconds>', 'bao lâu (giây) tìm sự kiện mới để gửi lên máy chủ huyện; cảnh báo an toàn và đề nghị của học sinh được gửi ngay', '5')
    .option('--workers <n>', 'số tiến trình proxy (mặc định: một mỗi CPU)')
    .option('--admin-port <port>', 'cổng nội bộ (127.0.0.1) cho /healthz và /metrics', '3129')
    .option('--header-timeout <ms>', 'thời gian (ms) để thiết bị gửi xong phần đầu yêu cầu', '15000')
    .option(
      '--events-in-memory <n>',
      'số sự kiện giữ trong bộ nhớ khi không ghi được kho sự kiện (đầy đĩa, chỉ đọc); quá số này sự kiện mới bị bỏ và được đếm',
      '50000',
    )
    .option('--access-log', 'ghi nhật ký mọi yêu cầu (mặc định tắt)')
    .option('--log-level <level>', 'mức nhật ký (pino)', 'info')
    .option('--upstream-timeout <seconds>', 'thời gian (giây) chờ trang web trả lời trước khi hiện trang lỗi 504', '30')
    .option(
      '--connect-timeout <seconds>',
      'thời gian (giây) chờ kết nối tới trang web (cả bắt tay TLS) trước khi hiện trang lỗi 504',
      String(DEFAULT_LIMITS.upstreamConnectTimeoutMs / 1000),
    )
    .option('--max-connections <n>', 'số kết nối của thiết bị mà mỗi tiến trình proxy giữ', String(DEFAULT_LIMITS.maxConnections))
    .option(
      '--max-client-connections <n>',
      'số kết nối một địa chỉ được giữ (cả phòng máy sau NAT là một địa chỉ: để rộng rãi)',
      String(DEFAULT_LIMITS.maxClientConnections),
    )
    .option('--staff-profiles <ids>', 'hồ sơ của thầy cô (cách nhau bởi dấu phẩy): mở được trang lớp học /__lachan__/lop-hoc', DEFAULT_STAFF_PROFILES)
    // Test-only: how long a "minute" of an exam or override lasts (docs/classroom.md).
    .addOption(new Option('--classroom-minute-ms <ms>').hideHelp())
    .action(async (options: ServeOptions) => {
      const { serve } = await import('./serve.js');
      await serve(options);
    });
}

/**
 * `lachan users add NAME`: lab accounts for proxy authentication. The password is read
 * from stdin (first line), so it never appears in the shell history or `ps`.
 */
function registerUsers(program: Command): void {
  const users = program.command('users').description('tài khoản đăng nhập proxy cho phòng máy dùng chung');
  users
    .command('add')
    .description('thêm tài khoản hoặc đổi mật khẩu (mật khẩu đọc từ stdin)')
    .argument('<name>', 'tên tài khoản (chữ cái, chữ số, . _ -)')
    .option('--rules <dir>', 'thư mục quy tắc có policy.yaml chỉ tệp tài khoản', './rules')
    .option('--users-file <file>', 'tệp tài khoản (mặc định: proxy_auth.users_file của policy.yaml, nếu không thì RULES/users)')
    .action(async (name: string, options: { rules: string; usersFile?: string }) => {
      const { hashPassword, isValidUserName, upsertUser } = await import('../proxy/auth.js');
      if (!isValidUserName(name)) throw new CliError(`tên tài khoản "${name}" chỉ gồm chữ cái, chữ số, ".", "_" và "-" (tối đa 64)`);
      const file = options.usersFile ?? (await usersFileOf(options.rules));
      const password = (await readStdin()).split(/\r?\n/, 1)[0] ?? '';
      if (password.length < 6) throw new CliError('đưa mật khẩu qua stdin (một dòng, ít nhất 6 ký tự), ví dụ `read -rs P; echo "$P" | lachan users add NAME`');
      let text = '';
      try {
        text = readFileSync(file, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new CliError(`không đọc được ${file}: ${(error as Error).message}`);
      }
      const next = upsertUser(text, name, hashPassword(password));
      const temporary = `${file}.${process.pid}.tmp`;
      try {
        writeFileSync(temporary, next, { mode: 0o600 });
        renameSync(temporary, file);
      } catch (error) {
        throw new CliError(`không ghi được ${file}: ${(error as Error).message}`);
      }
      process.stdout.write(`đã lưu ${name} vào ${file}\n`);
    });
}

async function usersFileOf(rulesDir: string): Promise<string> {
  const { loadPolicy } = await import('../rules/loader.js');
  try {
    const policy = await loadPolicy(rulesDir);
    if (policy.proxyAuth.usersFile !== null) return policy.proxyAuth.usersFile;
  } catch {
    // A rules folder that does not load yet still has a conventional place for users.
  }
  return path.join(rulesDir, 'users');
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('Mật khẩu (một dòng, Enter để kết thúc): ');
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  return text;
}
