import type { Command } from 'commander';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { userInfo } from 'node:os';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { parseSince, SINCE_HELP } from '../events/since.js';
import { loadOrCreateAdminToken } from '../central/admin-token.js';
import { AccountStore, isRole, ROLES, type Role } from '../central/accounts.js';
import { createDashboard } from '../central/dashboard/routes.js';
import { DashboardQueries } from '../central/dashboard/queries.js';
import { createCollectorServer } from '../central/server.js';
import { openDistrict } from '../central/district.js';
import { loadOrCreateSigner, SigningKeyError, SIGNING_PUBLIC_KEY_FILE, type PolicySigner } from '../central/signing-key.js';
import { CENTRAL_DB_FILE, openSqliteStore, type SqliteCentralStore } from '../central/sqlite-store.js';
import { StoreError, type CentralEvent } from '../central/store.js';
import { CliError } from './errors.js';
import { quietOnClosedPipe } from './logs.js';

const DEFAULT_DATA = './var/central';
const DAY_MS = 86_400_000;

function positiveInt(name: string, min = 1) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new CliError(`${name}: "${value}" is not an integer ≥ ${min}`);
    return n;
  };
}

/**
 * Runs one command against the collector database and closes it; a store error (a
 * name taken, an unknown school) becomes one line on stderr.
 */
export async function withStore<T>(dataDir: string, run: (store: SqliteCentralStore) => Promise<T>, create = false): Promise<T> {
  const store = openStore(dataDir, create);
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

/** Opens the collector database; only `serve` and `school add` may create it. */
function openStore(dataDir: string, create = false) {
  if (!create && !existsSync(path.join(dataDir, CENTRAL_DB_FILE))) {
    throw new CliError(`no collector database in ${dataDir} (${CENTRAL_DB_FILE} not found; is --data the collector's data folder?)`);
  }
  try {
    return openSqliteStore({ dataDir });
  } catch (error) {
    throw new CliError(`cannot open the collector database in ${dataDir}: ${(error as Error).message}`);
  }
}

interface ServeOptions {
  port: number;
  host: string;
  data: string;
  retentionDays: number;
  rateLimit: number;
}

export function registerCentral(program: Command): void {
  const central = program.command('central').description('the district collector: receives events from schools');

  central
    .command('serve')
    .description('run the collector (ingest API, dashboard API)')
    .option('--port <port>', 'port to listen on (0: any free port)', positiveInt('--port', 0), 8080)
    .option('--host <address>', 'address to listen on (put a TLS reverse proxy in front for the internet)', '127.0.0.1')
    .option('--data <dir>', 'collector data folder', DEFAULT_DATA)
    .option('--retention-days <days>', 'days raw events and decided review requests are kept (daily roll-ups and policy rules stay)', positiveInt('--retention-days'), 400)
    .option('--rate-limit <n>', 'ingest requests a second per school', positiveInt('--rate-limit'), 20)
    .action(async (options: ServeOptions) => {
      if (options.port > 65535) throw new CliError(`--port: ${options.port} is not a port`);
      const logger = pino({ name: 'lachan-central', level: process.env.LACHAN_LOG_LEVEL ?? 'info' });
      mkdirSync(options.data, { recursive: true, mode: 0o750 });
      const store = openStore(options.data, true);
      const adminToken = loadOrCreateAdminToken(options.data);
      const accounts = new AccountStore(store.database);
      const district = explainKeyErrors(() => openDistrict(store.database, options.data, (...entry) => accounts.audit(...entry)));
      const dashboard = createDashboard({ store, accounts, queries: new DashboardQueries(store.database), district });
      const server = createCollectorServer({ store, adminToken, logger, rateLimit: options.rateLimit, dashboard, district });

      const retentionMs = options.retentionDays * DAY_MS;
      const expire = () => {
        store
          .expire(Date.now() - retentionMs)
          .then((removed) => {
            const requests = district.reviews.expire(Date.now() - retentionMs);
            if (removed > 0 || requests > 0) logger.info({ removed, requests, retentionDays: options.retentionDays }, 'expired raw events and decided requests');
          })
          .catch((error: unknown) => logger.error({ err: error }, 'expiry failed'));
      };
      expire();
      const retentionTimer = setInterval(expire, 6 * 3_600_000);
      retentionTimer.unref();

      await new Promise<void>((resolve, reject) => {
        server.once('error', (error: NodeJS.ErrnoException) => reject(new CliError(`cannot listen on ${options.host}:${options.port}: ${error.code ?? error.message}`)));
        server.listen(options.port, options.host, resolve);
      });
      const address = server.address() as AddressInfo;
      logger.info(
        { host: address.address, port: address.port, data: options.data, adminTokenFile: `${options.data}/admin-token`, policyKey: district.signer.fingerprint },
        'listening',
      );

      const stop = (signal: string) => {
        logger.info({ signal }, 'stopping');
        clearInterval(retentionTimer);
        server.close(() => void store.close().then(() => process.exit(0)));
        server.closeIdleConnections();
        setTimeout(() => process.exit(0), 5_000).unref();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });

  const school = central.command('school').description('schools allowed to send events');

  school
    .command('add')
    .description('register a school; prints its id and token once')
    .requiredOption('--name <name>', 'the school\'s name, e.g. "TH Trạm Tấu"')
    .option('--data <dir>', 'collector data folder', DEFAULT_DATA)
    .option('--json', 'print {"id":…,"token":…}')
    .action(async (options: { name: string; data: string; json?: boolean }) => {
      await withStore(options.data, async (store) => {
        const created = await store.addSchool(options.name);
        new AccountStore(store.database).audit(cliActor(), 'school.add', `school:${created.id}`, null, { id: created.id, name: options.name.trim() });
        const signer = explainKeyErrors(() => loadOrCreateSigner(options.data));
        if (options.json) {
          process.stdout.write(`${JSON.stringify({ id: created.id, token: created.token, policyKey: signer.publicKeyPem, policyKeyFingerprint: signer.fingerprint })}\n`);
        } else {
          process.stdout.write(
            `school: ${created.id}\ntoken:  ${created.token}\n` +
              'The token is shown only this once: put it in the gateway\'s token file (lachan serve --token-file).\n' +
              `Collector policy key (save on the gateway as its --central-key file; fingerprint ${signer.fingerprint}):\n${signer.publicKeyPem}`,
          );
        }
      }, true);
    });

  school
    .command('list')
    .description('registered schools')
    .option('--data <dir>', 'collector data folder', DEFAULT_DATA)
    .option('--json', 'one JSON object a line')
    .action(async (options: { data: string; json?: boolean }) => {
      await withStore(options.data, async (store) => {
        const schools = await store.listSchools();
        for (const s of schools) {
          if (options.json) {
            process.stdout.write(`${JSON.stringify({ id: s.id, name: s.name, createdAt: new Date(s.createdAt).toISOString(), revoked: s.revokedAt !== null })}\n`);
          } else {
            process.stdout.write(`${s.id}  ${new Date(s.createdAt).toISOString().slice(0, 10)}  ${s.revokedAt === null ? 'active ' : 'revoked'}  ${s.name}\n`);
          }
        }
      });
    });

  school
    .command('revoke')
    .description('stop accepting a school\'s token')
    .argument('<id>', 'school id')
    .option('--data <dir>', 'collector data folder', DEFAULT_DATA)
    .action(async (id: string, options: { data: string }) => {
      await withStore(options.data, async (store) => {
        if (!(await store.revokeSchool(id))) throw new CliError(`no school with id ${id}`);
        new AccountStore(store.database).audit(cliActor(), 'school.revoke', `school:${id}`, { revoked: false }, { revoked: true });
        process.stderr.write(`school ${id}: token revoked\n`);
      });
    });

  central
    .command('key')
    .description('the collector\'s public policy-signing key (PEM), for gateways\' --central-key')
    .option('--data <dir>', 'collector data folder', DEFAULT_DATA)
    .action((options: { data: string }) => {
      if (!existsSync(options.data)) throw new CliError(`no collector data folder ${options.data}`);
      const signer = explainKeyErrors(() => loadOrCreateSigner(options.data));
      process.stdout.write(signer.publicKeyPem);
      process.stderr.write(`fingerprint ${signer.fingerprint} (also in ${path.join(options.data, SIGNING_PUBLIC_KEY_FILE)})\n`);
    });

  const user = central.command('user').description('dashboard accounts');

  user
    .command('add')
    .description('add a dashboard user; the password is read from stdin (or asked for on a terminal)')
    .argument('<name>', 'login name')
    .requiredOption('--role <role>', ROLES.join('|'))
    .option('--school <id>', 'the school a school-it user sees (required for that role)')
    .option('--data <dir>', 'collector data folder', DEFAULT_DATA)
    .action(async (name: string, options: { role: string; school?: string; data: string }) => {
      if (!isRole(options.role)) throw new CliError(`--role: "${options.role}" is not one of ${ROLES.join(', ')}`);
      const role: Role = options.role;
      const password = await readPassword();
      await withStore(options.data, async (store) => {
        await new AccountStore(store.database).addUser(cliActor(), name, role, options.school ?? null, password);
        process.stderr.write(`user ${name} added (${role}${options.school ? `, school ${options.school}` : ''})\n`);
      });
    });

  user
    .command('list')
    .description('dashboard users')
    .option('--data <dir>', 'collector data folder', DEFAULT_DATA)
    .option('--json', 'one JSON object a line')
    .action(async (options: { data: string; json?: boolean }) => {
      await withStore(options.data, async (store) => {
        for (const u of new AccountStore(store.database).users()) {
          if (options.json) process.stdout.write(`${JSON.stringify({ name: u.name, role: u.role, school: u.school, createdAt: new Date(u.createdAt).toISOString() })}\n`);
          else process.stdout.write(`${u.name}  ${u.role}  ${u.school ?? '-'}  ${new Date(u.createdAt).toISOString().slice(0, 10)}\n`);
        }
      });
    });

  central
    .command('events')
    .description('events stored at the collector, oldest first')
    .option('--data <dir>', 'collector data folder', DEFAULT_DATA)
    .option('--school <id>', 'only this school')
    .option('--since <when>', SINCE_HELP)
    .option('--category <name>', 'only this category')
    .option('--profile <id>', 'only this profile')
    .option('--host <host>', 'only this host')
    .option('--limit <n>', 'at most the newest N events', positiveInt('--limit'), 100_000)
    .option('--json', 'one JSON object a line')
    .action(async (options: { data: string; school?: string; since?: string; category?: string; profile?: string; host?: string; limit: number; json?: boolean }) => {
      let from: number | undefined;
      if (options.since !== undefined) {
        const parsed = parseSince(options.since);
        if (parsed === null) throw new CliError(`--since: "${options.since}" is not ${SINCE_HELP}`);
        from = parsed;
      }
      quietOnClosedPipe();
      const events: CentralEvent[] = [];
      await withStore(options.data, async (store) => {
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
      if (events.length === 0) return void process.stdout.write('no events\n');
      for (const e of events) {
        process.stdout.write(`${new Date(e.time).toISOString()}  ${e.school}  ${e.profile}  ${e.category ?? '-'}  ${e.client}  ${e.method} ${e.host}${e.path}${(e.count ?? 1) > 1 ? `  ×${e.count}` : ''}\n`);
      }
      process.stdout.write(`${events.length} event${events.length === 1 ? '' : 's'}\n`);
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
    if (line.length === 0) throw new CliError('no password on stdin');
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
  if (first !== second) throw new CliError('the passwords differ');
  return first;
}
