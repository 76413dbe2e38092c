/*
 * What a collector process keeps besides its store: the admin token and the lists
 * mirror's versions. On SQLite they are files in --data; on PostgreSQL they are in the
 * database, shared by every process (docs/scaling.md), and `lachan central admin-token`
 * gives an operator on any machine the token in force, or a new one.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  ADMIN_TOKEN_FILE,
  type AdminTokenCheck,
  loadOrCreateAdminToken,
  newAdminToken,
  readAdminTokenFile,
  writeAdminTokenFile,
} from '../central/admin-token.js';
import type { ListsBacking } from '../central/lists-mirror.js';
import { type CollectorDatabase, StoreError } from '../central/store.js';
import type { RefresherLogger } from '../lists/refresher.js';
import type { PgPool } from '../storage/postgres.js';
import { CliError, EXIT_CHECK_FAILED } from './errors.js';

interface Where {
  readonly data: string;
  readonly database?: string;
}

export interface ProcessState {
  readonly adminToken: string | AdminTokenCheck;
  /** Absent on SQLite: the mirror keeps its files in --data. */
  readonly listsBacking?: ListsBacking;
  stop(): Promise<void>;
}

/** The admin token and the lists mirror's home for `central serve` (after the store is open: its schema is applied). */
export async function openProcessState(options: Where & { readonly listsFile: string }, logger: RefresherLogger): Promise<ProcessState> {
  if (options.database === undefined) return { adminToken: loadOrCreateAdminToken(options.data), stop: async () => undefined };
  // Loaded here only: a collector on SQLite starts without node-postgres.
  const { openPool } = await import('../storage/postgres.js');
  const { openSharedAdminToken } = await import('../central/admin-token-pg.js');
  const { PgListsBacking } = await import('../central/lists-mirror-pg.js');
  const pool = openPool(options.database, 4);
  pool.on('error', (error: Error) => logger.warn({ err: error.message }, 'PostgreSQL connection lost'));
  const adminToken = await openSharedAdminToken({ url: options.database, pool, dataDir: options.data, logger });
  const listsBacking = new PgListsBacking({ pool, dataDir: options.data, listsFile: options.listsFile, logger });
  return {
    adminToken,
    listsBacking,
    async stop() {
      listsBacking.stop();
      await adminToken.stop();
      await pool.end().catch(() => undefined);
    },
  };
}

/**
 * The pool of a store opened with --database. Imported on demand: a collector on SQLite
 * starts without node-postgres. A SQLite store here is a bug in the caller, not the user's doing.
 */
async function poolOf(store: CollectorDatabase): Promise<PgPool> {
  const { PostgresCentralStore } = await import('../central/pg-store.js');
  if (!(store instanceof PostgresCentralStore)) throw new StoreError('LACHAN_NOT_POSTGRES', 'the shared admin token needs the store opened with --database');
  return store.pool;
}

/** `lachan central admin-token [--rotate]`: prints the admin token in force, or makes a new one. */
export function registerAdminToken(
  central: Command,
  deps: {
    defaultData: string;
    databaseHelp: string;
    withStore: <T>(where: Where, run: (store: CollectorDatabase) => Promise<T>) => Promise<T>;
    actor: () => string;
  },
): void {
  central
    .command('admin-token')
    .description('mã quản trị (Bearer) của API bảng điều khiển: in mã đang dùng, hoặc tạo mã mới (--rotate)')
    .option('--rotate', 'tạo mã mới; mã cũ hết hiệu lực ngay trên mọi tiến trình máy chủ huyện')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ huyện (mã được ghi vào DATA/admin-token)', deps.defaultData)
    .option('--database <url>', deps.databaseHelp)
    .action(async (options: Where & { rotate?: boolean }) => {
      const file = path.join(options.data, ADMIN_TOKEN_FILE);
      if (!existsSync(options.data)) throw new CliError(`không có thư mục dữ liệu của máy chủ huyện ${options.data}`);
      if (options.database === undefined) {
        if (!options.rotate) return void process.stdout.write(`${loadOrCreateAdminToken(options.data)}\n`);
        const token = newAdminToken();
        writeAdminTokenFile(options.data, token);
        process.stdout.write(`${token}\n`);
        process.stderr.write(`Đã ghi mã mới vào ${file}; khởi động lại lachan central serve để mã cũ hết hiệu lực.\n`);
        return;
      }
      const { ensureAdminToken, isAdminTokenInForce, rotateAdminToken } = await import('../central/admin-token-pg.js');
      await deps.withStore(options, async (store) => {
        const pool = await poolOf(store);
        if (options.rotate) {
          const token = await rotateAdminToken(pool);
          store.accounts.audit(deps.actor(), 'admin-token.rotate', 'admin-token', null, null);
          writeAdminTokenFile(options.data, token);
          process.stdout.write(`${token}\n`);
          process.stderr.write(`Mã mới (cũng ghi vào ${file}); mã cũ đã hết hiệu lực trên mọi tiến trình dùng cơ sở dữ liệu này.\n`);
          return;
        }
        const { created } = await ensureAdminToken(pool, options.data);
        const held = created ?? readAdminTokenFile(options.data);
        if (held === null || !(await isAdminTokenInForce(pool, held)))
          throw new CliError(
            `${file} không chứa mã quản trị đang dùng (cơ sở dữ liệu chỉ giữ bản băm của mã): lấy tệp admin-token ở máy đã tạo mã, hoặc tạo mã mới bằng --rotate`,
            EXIT_CHECK_FAILED,
          );
        process.stdout.write(`${held}\n`);
      });
    });
}
