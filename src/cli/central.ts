/*
 * `lachan central …` (docs/contract.md §2): one small action per subcommand over the
 * collector database. Over ~400 lines because it registers every subcommand in one
 * place, as the contract lists them; each action is short.
 */
import type { Command } from 'commander';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { userInfo } from 'node:os';
import type { AddressInfo } from 'node:net';
import { parseSince } from '../events/since.js';
import { ADMIN_TOKEN_FILE } from '../central/admin-token.js';
import { type AccountStore, isRole, ROLES, type Role } from '../central/accounts.js';
import { loadOrCreateSigner, SigningKeyError, SIGNING_KEY_FILE, SIGNING_PUBLIC_KEY_FILE, type PolicySigner } from '../central/signing-key.js';
import { StoreError, type CentralEvent, type CollectorDatabase } from '../central/store.js';
import type { Organisation } from '../rules/organisation.js';
import { CliError, EXIT_CHECK_FAILED, EXIT_USAGE, SINCE_HINT } from './errors.js';
import { COLLECTOR_ALERT_RETENTION_DAYS, COLLECTOR_EVENT_RETENTION_DAYS } from '../privacy/retention.js';
import { registerAlertContacts } from './central-alerts.js';
import { openProcessState, registerAdminToken } from './central-shared.js';
import { quietOnClosedPipe } from './logs.js';

const DEFAULT_DATA = './var/central';
const DAY_MS = 86_400_000;

function positiveInt(name: string, min = 1) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new CliError(`${name}: "${value}" phải là số nguyên ≥ ${min}`);
    return n;
  };
}

/** Where the collector's database is: SQLite in `data`, or the PostgreSQL database `database` (docs/contract.md §10). */
export interface StoreLocation {
  readonly data: string;
  readonly database?: string;
}

const DATABASE_HELP = 'cơ sở dữ liệu PostgreSQL của máy chủ huyện (postgres://…); không có: SQLite trong --data';

/**
 * Runs one command against the collector database and closes it; a store error (a
 * name taken, an unknown school) becomes one line on stderr.
 */
export async function withStore<T>(where: StoreLocation, run: (store: CollectorDatabase) => Promise<T>, create = false): Promise<T> {
  const store = await openStore(where, create);
  try {
    return await run(store);
  } catch (error) {
    if (error instanceof StoreError) throw new CliError(error.message);
    throw error;
  } finally {
    await store.close();
  }
}

/** A signing key that others can read, or that is not an Ed25519 key, stops the command with the reason. */
function explainKeyErrors<T extends PolicySigner | { signer: PolicySigner }>(open: () => T): T {
  try {
    return open();
  } catch (error) {
    if (error instanceof SigningKeyError) throw new CliError(error.message);
    throw error;
  }
}

/** The collector's organisation.yaml (defaults when absent); a broken one stops the command with FILE:LINE. */
export async function explainOrganisation(dataDir: string): Promise<Organisation> {
  const { loadOrganisationFile, OrganisationFileError } = await import('../rules/organisation.js');
  try {
    return loadOrganisationFile(dataDir);
  } catch (error) {
    if (error instanceof OrganisationFileError) throw new CliError(error.message);
    throw error;
  }
}

/** Opens the collector database; only `serve` and `school add` may create it (a PostgreSQL database gets its tables whenever opened). */
async function openStore(where: StoreLocation, create = false): Promise<CollectorDatabase> {
  if (where.database !== undefined) return openDatabase(where.database);
  const dataDir = where.data;
  const { CENTRAL_DB_FILE, openSqliteStore } = await import('../central/sqlite-store.js');
  if (!create && !existsSync(path.join(dataDir, CENTRAL_DB_FILE))) {
    throw new CliError(
      `không có cơ sở dữ liệu của máy chủ huyện trong ${dataDir} (không thấy ${CENTRAL_DB_FILE}; --data có đúng là thư mục dữ liệu của máy chủ huyện?)`,
    );
  }
  try {
    // A command answers once: it moves whatever the collector has acknowledged and not yet filed.
    return openSqliteStore({ dataDir, exactQueries: true });
  } catch (error) {
    throw new CliError(`không mở được cơ sở dữ liệu của máy chủ huyện trong ${dataDir}: ${(error as Error).message}`);
  }
}

async function openDatabase(url: string): Promise<CollectorDatabase> {
  if (!/^postgres(ql)?:\/\//.test(url)) throw new CliError(`--database: "${url}" phải có dạng postgres://…`);
  // Loaded here only: a collector on SQLite starts without node-postgres.
  const { openPostgresStore } = await import('../central/pg-store.js');
  try {
    return await openPostgresStore({ url });
  } catch (error) {
    throw new CliError(`không kết nối được PostgreSQL (--database): ${(error as Error).message}`);
  }
}

interface ServeOptions {
  port: number;
  host: string;
  data: string;
  database?: string;
  retentionDays: number;
  rateLimit: number;
  lists?: string;
  trustedProxy?: string;
  smtp?: string;
  mailFrom?: string;
}

export function registerCentral(program: Command): void {
  const central = program.command('central').description('máy chủ huyện (Phòng GD&ĐT): nhận sự kiện chặn từ các trường');
  registerBackup(central);

  central
    .command('serve')
    .description('chạy máy chủ huyện (API nhận sự kiện, bảng điều khiển)')
    .option('--port <port>', 'cổng lắng nghe (0: cổng trống bất kỳ)', positiveInt('--port', 0), 8080)
    .option('--host <address>', 'địa chỉ lắng nghe (ra Internet thì đặt một reverse proxy TLS phía trước)', '127.0.0.1')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ huyện', DEFAULT_DATA)
    .option('--database <url>', DATABASE_HELP)
    .option(
      '--retention-days <days>',
      'số ngày giữ sự kiện gốc và đề nghị đã xử lý (thống kê theo ngày và quy tắc được giữ)',
      positiveInt('--retention-days'),
      COLLECTOR_EVENT_RETENTION_DAYS,
    )
    .option('--rate-limit <n>', 'số yêu cầu gửi sự kiện mỗi giây của một trường', positiveInt('--rate-limit'), 20)
    .option('--lists <file>', 'danh sách chặn huyện đăng ký, tải một lần cho mọi trường (mặc định: DATA/lists.yaml)')
    .option(
      '--trusted-proxy <addresses>',
      'địa chỉ các reverse proxy (cách nhau bằng dấu phẩy) mà X-Forwarded-For của chúng cho biết máy đăng nhập, để hạn chế đoán mật khẩu',
    )
    .option('--smtp <url>', 'máy chủ thư gửi cảnh báo an toàn cho trường, ví dụ smtp://mail.phong.edu.vn:587 (không có: chỉ gửi webhook)')
    .option('--mail-from <address>', 'địa chỉ người gửi thư cảnh báo', 'lachan@localhost')
    .action(async (options: ServeOptions) => {
      if (options.port > 65535) throw new CliError(`--port: ${options.port} không phải số cổng`);
      const [{ pino }, { createDashboard }, { createCollectorServer }, { ListsMirror }, { AlertDelivery }] = await Promise.all([
        import('pino'),
        import('../central/dashboard/routes.js'),
        import('../central/server.js'),
        import('../central/lists-mirror.js'),
        import('../central/alert-delivery.js'),
      ]);
      const logger = pino({ name: 'lachan-central', level: process.env.LACHAN_LOG_LEVEL ?? 'info' });
      mkdirSync(options.data, { recursive: true, mode: 0o750 });
      const store = await openStore(options, true);
      const listsFile = options.lists ?? path.join(options.data, 'lists.yaml');
      const shared = await openProcessState({ ...options, listsFile }, logger);
      const accounts = store.accounts;
      const district = explainKeyErrors(() => store.openDistrict(options.data, (...entry) => accounts.audit(...entry)));
      const organisation = await explainOrganisation(options.data);
      const trustedProxies = (options.trustedProxy ?? '')
        .split(',')
        .map((a) => a.trim())
        .filter((a) => a !== '');
      const dashboard = createDashboard({ store, accounts, queries: store.dashboardQueries, district, organisation, trustedProxies });
      const lists = new ListsMirror({ dataDir: options.data, listsFile, logger, backing: shared.listsBacking });
      const alertDelivery = new AlertDelivery({ alerts: store.alerts, logger, smtpUrl: options.smtp, mailFrom: options.mailFrom });
      const server = createCollectorServer({
        store,
        adminToken: shared.adminToken,
        logger,
        rateLimit: options.rateLimit,
        dashboard,
        district,
        lists,
        alertDelivery,
      });

      const retentionMs = options.retentionDays * DAY_MS;
      const expire = () => {
        store
          .expire(Date.now() - retentionMs)
          .then((removed) => {
            const requests = district.reviews.expire(Date.now() - retentionMs);
            if (removed > 0 || requests > 0)
              logger.info({ removed, requests, retentionDays: options.retentionDays }, 'expired raw events and decided requests');
            return store.alerts.expire(Date.now() - COLLECTOR_ALERT_RETENTION_DAYS * DAY_MS);
          })
          .then((alerts) => {
            if (alerts !== undefined && alerts > 0) logger.info({ alerts, retentionDays: COLLECTOR_ALERT_RETENTION_DAYS }, 'expired safeguarding alerts');
          })
          .catch((error: unknown) => logger.error({ err: error }, 'expiry failed'));
      };
      expire();
      const retentionTimer = setInterval(expire, 6 * 3_600_000);
      retentionTimer.unref();

      await new Promise<void>((resolve, reject) => {
        server.once('error', (error: NodeJS.ErrnoException) =>
          reject(
            new CliError(
              `${error.code === 'EADDRINUSE' ? `cổng ${options.port} đang được dùng (--port)` : `không mở được ${options.host}:${options.port}`}: ${error.code ?? error.message}`,
            ),
          ),
        );
        server.listen(options.port, options.host, resolve);
      });
      const address = server.address() as AddressInfo;
      logger.info(
        {
          host: address.address,
          port: address.port,
          data: options.data,
          database: options.database === undefined ? 'sqlite' : 'postgres',
          adminTokenFile: `${options.data}/admin-token`,
          policyKey: district.signer.fingerprint,
        },
        'listening',
      );

      const stop = (signal: string) => {
        logger.info({ signal }, 'stopping');
        clearInterval(retentionTimer);
        lists.stop();
        alertDelivery.stop();
        server.close(() => void Promise.all([store.close(), shared.stop()]).then(() => process.exit(0)));
        server.closeIdleConnections();
        setTimeout(() => process.exit(0), 5_000).unref();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });

  const school = central.command('school').description('các trường được gửi sự kiện');

  school
    .command('add')
    .description('đăng ký một trường; in mã trường và token một lần duy nhất')
    .requiredOption('--name <name>', 'tên trường, ví dụ "TH Trạm Tấu"')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ huyện', DEFAULT_DATA)
    .option('--database <url>', DATABASE_HELP)
    .option('--json', 'in {"id":…,"token":…}')
    .action(async (options: { name: string; data: string; database?: string; json?: boolean }) => {
      await withStore(
        options,
        async (store) => {
          const created = await store.addSchool(options.name);
          store.accounts.audit(cliActor(), 'school.add', `school:${created.id}`, null, { id: created.id, name: options.name.trim() });
          const signer = explainKeyErrors(() => store.openDistrict(options.data, () => {}).signer);
          if (options.json) {
            process.stdout.write(
              `${JSON.stringify({ id: created.id, token: created.token, policyKey: signer.publicKeyPem, policyKeyFingerprint: signer.fingerprint })}\n`,
            );
          } else {
            process.stdout.write(
              `school: ${created.id}\ntoken:  ${created.token}\n` +
                'Mã token chỉ hiện một lần này: ghi nó vào tệp token của máy chủ trường (lachan serve --token-file).\n' +
                `Khoá chính sách của máy chủ huyện (lưu trên máy chủ trường làm tệp --central-key; dấu vân tay ${signer.fingerprint}):\n${signer.publicKeyPem}`,
            );
          }
        },
        true,
      );
    });

  registerAlertContacts(school, { defaultData: DEFAULT_DATA, withStore, actor: cliActor, databaseHelp: DATABASE_HELP });
  registerAdminToken(central, { defaultData: DEFAULT_DATA, withStore, actor: cliActor, databaseHelp: DATABASE_HELP });

  school
    .command('list')
    .description('các trường đã đăng ký')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ huyện', DEFAULT_DATA)
    .option('--database <url>', DATABASE_HELP)
    .option('--json', 'mỗi dòng một đối tượng JSON')
    .action(async (options: StoreLocation & { json?: boolean }) => {
      await withStore(options, async (store) => {
        const schools = await store.listSchools();
        for (const s of schools) {
          if (options.json) {
            process.stdout.write(
              `${JSON.stringify({ id: s.id, name: s.name, createdAt: new Date(s.createdAt).toISOString(), revoked: s.revokedAt !== null })}\n`,
            );
          } else {
            process.stdout.write(
              `${s.id}  ${new Date(s.createdAt).toISOString().slice(0, 10)}  ${s.revokedAt === null ? 'đang dùng' : 'đã thu hồi'}  ${s.name}\n`,
            );
          }
        }
      });
    });

  school
    .command('revoke')
    .description('thu hồi token của một trường')
    .argument('<id>', 'mã trường')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ huyện', DEFAULT_DATA)
    .option('--database <url>', DATABASE_HELP)
    .action(async (id: string, options: StoreLocation) => {
      await withStore(options, async (store) => {
        if (!(await store.revokeSchool(id))) throw new CliError(`không có trường nào mã ${id}`);
        store.accounts.audit(cliActor(), 'school.revoke', `school:${id}`, { revoked: false }, { revoked: true });
        process.stderr.write(`trường ${id}: đã thu hồi token\n`);
      });
    });

  central
    .command('key')
    .description('khoá công khai ký chính sách của máy chủ huyện (PEM), cho --central-key của máy chủ trường')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ huyện', DEFAULT_DATA)
    .option('--database <url>', DATABASE_HELP)
    .action(async (options: StoreLocation) => {
      if (options.database !== undefined) {
        // The key is in the database, shared by every collector process.
        const signer = await withStore(options, async (store) => explainKeyErrors(() => store.openDistrict(options.data, () => {}).signer));
        process.stdout.write(signer.publicKeyPem);
        process.stderr.write(`fingerprint ${signer.fingerprint} (dấu vân tay; khoá lưu trong cơ sở dữ liệu PostgreSQL)\n`);
        return;
      }
      if (!existsSync(options.data)) throw new CliError(`không có thư mục dữ liệu của máy chủ huyện ${options.data}`);
      const signer = explainKeyErrors(() => loadOrCreateSigner(options.data));
      process.stdout.write(signer.publicKeyPem);
      process.stderr.write(`fingerprint ${signer.fingerprint} (dấu vân tay; cũng có trong ${path.join(options.data, SIGNING_PUBLIC_KEY_FILE)})\n`);
    });

  const user = central.command('user').description('tài khoản bảng điều khiển');

  user
    .command('add')
    .description('thêm tài khoản bảng điều khiển; mật khẩu đọc từ stdin (hoặc hỏi trên terminal)')
    .argument('<name>', 'tên đăng nhập')
    .requiredOption('--role <role>', ROLES.join('|'))
    .option('--school <id>', 'trường mà tài khoản school-it hoặc tu-van được xem (bắt buộc với hai vai trò đó)')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ huyện', DEFAULT_DATA)
    .option('--database <url>', DATABASE_HELP)
    .action(async (name: string, options: StoreLocation & { role: string; school?: string }) => {
      if (!isRole(options.role)) throw new CliError(`--role: "${options.role}" không phải một trong ${ROLES.join(', ')}`);
      const role: Role = options.role;
      const password = await readPassword();
      await withStore(options, async (store) => {
        await store.accounts.addUser(cliActor(), name, role, options.school ?? null, password);
        process.stderr.write(`đã thêm tài khoản ${name} (${role}${options.school ? `, trường ${options.school}` : ''})\n`);
      });
    });

  // Each change is audited as the command line's user; disabling, deleting or a new
  // password ends the account's sessions at once.
  const userChange = (command: string, description: string, done: string, change: (accounts: AccountStore, name: string) => void | Promise<void>) =>
    user
      .command(command)
      .description(description)
      .argument('<name>', 'login name')
      .option('--data <dir>', 'collector data folder', DEFAULT_DATA)
      .option('--database <url>', DATABASE_HELP)
      .action(async (name: string, options: StoreLocation) => {
        await withStore(options, async (store) => {
          await change(store.accounts, name);
          process.stderr.write(`${done.replace('{name}', name)}\n`);
        });
      });
  userChange(
    'disable',
    'disable a dashboard user: no login, sessions end now',
    'đã khóa tài khoản {name} (các phiên đăng nhập đã kết thúc)',
    (accounts, name) => accounts.setDisabled(cliActor(), name, true),
  );
  userChange('enable', 'enable a disabled dashboard user again', 'đã mở lại tài khoản {name}', (accounts, name) =>
    accounts.setDisabled(cliActor(), name, false),
  );
  userChange('delete', 'delete a dashboard user and end its sessions', 'đã xóa tài khoản {name}', (accounts, name) => accounts.deleteUser(cliActor(), name));
  userChange(
    'reset-password',
    'set a new password (read from stdin, or asked for on a terminal); sessions end',
    'đã đặt mật khẩu mới cho {name} (các phiên đăng nhập đã kết thúc)',
    async (accounts, name) => accounts.resetPassword(cliActor(), name, await readPassword()),
  );

  user
    .command('list')
    .description('các tài khoản bảng điều khiển')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ huyện', DEFAULT_DATA)
    .option('--database <url>', DATABASE_HELP)
    .option('--json', 'mỗi dòng một đối tượng JSON')
    .action(async (options: StoreLocation & { json?: boolean }) => {
      await withStore(options, async (store) => {
        for (const u of store.accounts.users()) {
          const disabledAt = u.disabledAt === null ? null : new Date(u.disabledAt).toISOString();
          if (options.json)
            process.stdout.write(
              `${JSON.stringify({ name: u.name, role: u.role, school: u.school, createdAt: new Date(u.createdAt).toISOString(), disabledAt })}\n`,
            );
          else
            process.stdout.write(
              `${u.name}  ${u.role}  ${u.school ?? '-'}  ${new Date(u.createdAt).toISOString().slice(0, 10)}${disabledAt === null ? '' : '  đã khóa'}\n`,
            );
        }
      });
    });

  central
    .command('migrate')
    .description('chuyển dữ liệu của máy chủ huyện từ SQLite sang PostgreSQL (một cơ sở dữ liệu trống), rồi đối chiếu số lượng')
    .requiredOption('--from <source>', 'sqlite:THƯ_MỤC: thư mục dữ liệu của máy chủ huyện')
    .requiredOption('--to <url>', 'postgres://…: cơ sở dữ liệu PostgreSQL 15 trở lên')
    .action(async (options: { from: string; to: string }) => {
      await runMigration(options.from, options.to);
    });

  central
    .command('events')
    .description('sự kiện lưu ở máy chủ huyện, cũ nhất trước')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ huyện', DEFAULT_DATA)
    .option('--database <url>', DATABASE_HELP)
    .option('--school <id>', 'chỉ trường này')
    .option('--since <when>', SINCE_HINT)
    .option('--category <name>', 'chỉ nhóm nội dung này')
    .option('--profile <id>', 'chỉ hồ sơ này')
    .option('--host <host>', 'chỉ tên máy này')
    .option('--limit <n>', 'tối đa N sự kiện mới nhất', positiveInt('--limit'), 100_000)
    .option('--json', 'mỗi dòng một đối tượng JSON')
    .action(
      async (
        options: StoreLocation & { school?: string; since?: string; category?: string; profile?: string; host?: string; limit: number; json?: boolean },
      ) => {
        let from: number | undefined;
        if (options.since !== undefined) {
          const parsed = parseSince(options.since);
          if (parsed === null) throw new CliError(`--since: "${options.since}" không đúng dạng: ${SINCE_HINT}`);
          from = parsed;
        }
        quietOnClosedPipe();
        const events: CentralEvent[] = [];
        await withStore(options, async (store) => {
          let cursor: string | undefined;
          do {
            const page = await store.queryEvents(
              { school: options.school, category: options.category, profile: options.profile, host: options.host, from },
              { cursor, limit: Math.min(5_000, options.limit - events.length) },
            );
            events.push(...page.events);
            cursor = page.nextCursor ?? undefined;
          } while (cursor !== undefined && events.length < options.limit);
        });
        events.reverse();
        if (options.json) {
          for (const e of events) {
            process.stdout.write(
              `${JSON.stringify({ id: e.id, time: new Date(e.time).toISOString(), school: e.school, profile: e.profile, category: e.category, reason: e.reason, rule: e.rule, source: e.source, host: e.host, path: e.path, method: e.method, client: e.client, count: e.count ?? 1, receivedAt: new Date(e.receivedAt).toISOString() })}\n`,
            );
          }
          return;
        }
        if (events.length === 0) return void process.stdout.write('không có sự kiện nào\n');
        for (const e of events) {
          process.stdout.write(
            `${new Date(e.time).toISOString()}  ${e.school}  ${e.profile}  ${e.category ?? '-'}  ${e.client}  ${e.method} ${e.host}${e.path}${(e.count ?? 1) > 1 ? `  ×${e.count}` : ''}\n`,
          );
        }
        process.stdout.write(`${events.length} sự kiện\n`);
      },
    );
}

/** `central backup`: the collector database copied while it serves (deploy/README.md, "Sao lưu"). */
function registerBackup(central: Command): void {
  central
    .command('backup')
    .description('sao lưu cơ sở dữ liệu của máy chủ huyện (SQLite) trong khi vẫn chạy; PostgreSQL: dùng pg_dump')
    .requiredOption('--to <file>', 'tệp sao lưu (ghi đè bản cũ chỉ khi bản mới đã xong)')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ huyện', DEFAULT_DATA)
    .option('--database <url>', DATABASE_HELP)
    .action(async (options: { to: string; data: string; database?: string }) => {
      if (options.database !== undefined) throw new CliError('cơ sở dữ liệu PostgreSQL: sao lưu bằng pg_dump (hoặc sao lưu liên tục của máy chủ PostgreSQL)');
      const { CENTRAL_DB_FILE } = await import('../central/sqlite-store.js');
      const databaseFile = path.join(options.data, CENTRAL_DB_FILE);
      if (!existsSync(databaseFile)) throw new CliError(`không có cơ sở dữ liệu của máy chủ huyện trong ${options.data} (không thấy ${CENTRAL_DB_FILE})`);
      const { BackupError, backupSqliteFile } = await import('../central/backup.js');
      try {
        const { pages } = await backupSqliteFile(databaseFile, options.to);
        process.stdout.write(
          `đã sao lưu ${databaseFile} vào ${options.to} (${pages} trang); sao lưu thêm các tệp khoá trong ${options.data}: ${ADMIN_TOKEN_FILE}, ${SIGNING_KEY_FILE}\n`,
        );
      } catch (error) {
        if (error instanceof BackupError) throw new CliError(`không sao lưu được vào ${options.to}: ${error.message}`);
        throw error;
      }
    });
}

/** Who made a change from the command line, for the audit log. */
function cliActor(): string {
  let login = 'unknown';
  try {
    login = userInfo().username;
  } catch {
    // no passwd entry (containers)
  }
  return `cli:${login}`;
}

/** A password from stdin (first line), or typed without echo on a terminal. */
async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
    if (line.length === 0) throw new CliError('không có mật khẩu trên stdin (no password on stdin)');
    return line;
  }
  const ask = (prompt: string) =>
    new Promise<string>((resolve) => {
      process.stderr.write(prompt);
      const stdin = process.stdin;
      stdin.setRawMode(true);
      stdin.resume();
      let typed = '';
      const onData = (data: Buffer) => {
        for (const ch of data.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            stdin.setRawMode(false);
            stdin.pause();
            stdin.off('data', onData);
            process.stderr.write('\n');
            return resolve(typed);
          }
          if (ch === '\u0003') process.exit(130);
          if (ch === '\u007f') typed = typed.slice(0, -1);
          else typed += ch;
        }
      };
      stdin.on('data', onData);
    });
  const first = await ask('Mật khẩu: ');
  const second = await ask('Nhập lại mật khẩu: ');
  if (first !== second) throw new CliError('hai lần nhập mật khẩu khác nhau');
  return first;
}

/** `central migrate`: one line a count compared, then the verdict; exit 1 when a count differs. */
async function runMigration(from: string, to: string): Promise<void> {
  if (!from.startsWith('sqlite:')) throw new CliError(`--from: "${from}" phải có dạng sqlite:THƯ_MỤC`);
  if (!/^postgres(ql)?:\/\//.test(to)) throw new CliError(`--to: "${to}" phải có dạng postgres://…`);
  const { CENTRAL_DB_FILE, openSqliteStore } = await import('../central/sqlite-store.js');
  const file = path.join(from.slice('sqlite:'.length), CENTRAL_DB_FILE);
  if (!existsSync(file)) throw new CliError(`không thấy ${file}`);
  // Loaded here only: every other command starts without node-postgres.
  const { openPostgresStore } = await import('../central/pg-store.js');
  const { migrateToPostgres, MigrationError } = await import('../central/migrate-to-postgres.js');
  // The SQLite store, opened once, brings its schema up to date for the copy.
  await openSqliteStore({ dataDir: path.dirname(file), writerThread: false }).close();
  let target: Awaited<ReturnType<typeof openPostgresStore>>;
  try {
    target = await openPostgresStore({ url: to, connections: 2 });
  } catch (error) {
    throw new CliError(`không kết nối được PostgreSQL: ${(error as Error).message}`);
  }
  try {
    const counts = await migrateToPostgres(file, target);
    for (const c of counts) process.stdout.write(`${c.what}: ${c.source} → ${c.target}\n`);
    process.stdout.write('Đã chuyển xong; số lượng hai bên khớp nhau.\n');
  } catch (error) {
    if (error instanceof MigrationError) {
      throw new CliError(
        error.code === 'LACHAN_TARGET_NOT_EMPTY'
          ? 'cơ sở dữ liệu PostgreSQL đích đã có trường hoặc sự kiện: hãy chuyển vào một cơ sở dữ liệu trống'
          : `số lượng không khớp sau khi chuyển: ${error.message}`,
        error.code === 'LACHAN_TARGET_NOT_EMPTY' ? EXIT_USAGE : EXIT_CHECK_FAILED,
      );
    }
    throw error;
  } finally {
    await target.close();
  }
}
