import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { pino, type Logger } from 'pino';
import { loadPolicy } from '../rules/loader.js';
import { RulesLoadError, formatProblem } from '../rules/problems.js';
import { watchRules } from '../rules/watch.js';
import type { PolicyOverlay } from '../rules/overlay.js';
import { readStoredOverlay, startOverlayPoller } from '../rules/overlay-poller.js';
import { openEventLog, type GatewayEventLog } from '../events/log.js';
import { startShipper, type Shipper } from '../events/shipper.js';
import { ProxyServer } from '../proxy/server.js';
import { startTransparentHttp, startTransparentHttps } from '../proxy/transparent.js';
import { Resolver } from '../proxy/resolver.js';
import { startAdminServer } from '../proxy/admin.js';
import { loadCa, type CertificateAuthority } from '../tls/index.js';
import { hashPassword, isValidUserName, upsertUser } from '../proxy/auth.js';
import { mergeSnapshots, renderMetrics, type MetricsSnapshot } from '../proxy/metrics.js';
import { CliError } from './errors.js';
import { missingProxyFlags, withProxyFlags } from './v8-flags.js';

interface ServeOptions {
  port: string;
  host: string;
  rules: string;
  data: string;
  hostsFile?: string;
  certs: string;
  transparentHttp?: string;
  dnsServer?: string[];
  centralKey?: string;
  policyInterval: string;
  transparentHttps?: string;
  central?: string;
  school?: string;
  tokenFile?: string;
  workers?: string;
  adminPort: string;
  accessLog?: boolean;
  eventsInMemory: string;
  logLevel: string;
  upstreamTimeout: string;
  headerTimeout: string;
}

/** Messages between the primary and proxy workers. */
type ToWorker = { type: 'reload' } | { type: 'metrics'; id: number } | { type: 'shutdown' };
type ToPrimary =
  | { type: 'metrics'; id: number; snapshot: MetricsSnapshot; eventStats: EventStatsLite | null }
  | { type: 'listening'; port: number }
  /** A review request or report was stored: the primary's shipper sends it now. */
  | { type: 'student-request' };
type EventStatsLite = { pending: number; overLimit: boolean; dropped: number; unwritable: boolean };

const SHUTDOWN_GRACE_MS = 3_000;

export function registerServe(program: Command): void {
  registerUsers(program);
  program
    .command('serve')
    .description('run the filtering proxy')
    .option('--port <port>', 'proxy port', '3128')
    .option('--host <address>', 'address to listen on', '0.0.0.0')
    .option('--rules <dir>', 'rules folder', './rules')
    .option('--data <dir>', 'data folder (event database, keys)', './var')
    .option('--central-key <file>', 'the collector\'s Ed25519 public key (PEM), pinned at enrolment: district policy is applied only when it verifies')
    .option('--policy-interval <seconds>', 'how often to ask the collector for the district policy', '60')
    .option('--dns-server <address>', 'DNS server to ask (repeatable; default: the system\'s)', (value: string, previous: string[] = []) => [...previous, value])
    .option('--transparent-http <port>', 'also take port-80 traffic redirected by the gateway (requests in origin form, host from Host)')
    .option('--transparent-https <port>', 'also take port-443 traffic redirected by the gateway (decided on the TLS SNI)')
    .option('--certs <dir>', 'school CA for HTTPS interception (lachan ca init); without one, blocked HTTPS gets a plain 403', './certs')
    .option('--hosts-file <file>', 'names mapped to addresses before DNS, /etc/hosts format')
    .option('--central <url>', 'district collector to ship blocked-access events to')
    .option('--school <id>', 'this school\'s id at the collector')
    .option('--token-file <file>', 'file holding this school\'s collector token')
    .option('--workers <n>', 'proxy processes (default: one per CPU)')
    .option('--admin-port <port>', 'loopback port for /healthz and /metrics', '3129')
    .option('--header-timeout <ms>', 'time a client has to send its request headers (slow clients cannot pin connections)', '15000')
    .option('--events-in-memory <n>', 'events kept in memory while the event store cannot be written (disk full, read-only); past it new ones are dropped and counted', '50000')
    .option('--access-log', 'log every request (off by default: the hot path does no logging I/O)')
    .option('--log-level <level>', 'pino log level', 'info')
    .option('--upstream-timeout <seconds>', 'time an origin has to answer before the 504 page', '30')
    .action(async (options: ServeOptions) => {
      const port = parsePort(options.port, '--port');
      const adminPort = parsePort(options.adminPort, '--admin-port');
      const workers = options.workers === undefined ? availableParallelism() : Number(options.workers);
      if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new CliError(`--workers must be a whole number from 1 to 64, not "${options.workers}"`);
      const shipping = options.central !== undefined || options.school !== undefined || options.tokenFile !== undefined;
      if (shipping && (options.central === undefined || options.school === undefined || options.tokenFile === undefined)) {
        throw new CliError('--central, --school and --token-file go together');
      }
      const inMemory = Number(options.eventsInMemory);
      if (!Number.isInteger(inMemory) || inMemory < 1) throw new CliError(`--events-in-memory must be a whole number of events, not "${options.eventsInMemory}"`);
      const upstreamTimeout = Number(options.upstreamTimeout);
      if (!(upstreamTimeout > 0)) throw new CliError(`--upstream-timeout must be a number of seconds, not "${options.upstreamTimeout}"`);
      const headerTimeout = Number(options.headerTimeout);
      if (!Number.isInteger(headerTimeout) || headerTimeout < 100) throw new CliError(`--header-timeout must be a number of milliseconds (100 or more), not "${options.headerTimeout}"`);
      const logger = pino({ level: options.logLevel, base: { pid: process.pid } });
      if (workers === 1) await runSingle(options, port, adminPort, logger);
      else await runPrimary(options, port, adminPort, workers, logger);
    });
}

/**
 * `lachan users add NAME`: lab accounts for proxy authentication. The password is read
 * from stdin (first line), so it never appears in the shell history or `ps`.
 */
function registerUsers(program: Command): void {
  const users = program.command('users').description('accounts for proxy authentication in shared computer labs');
  users
    .command('add')
    .description('add a user or change its password (password read from stdin)')
    .argument('<name>', 'user name (letters, digits, . _ -)')
    .option('--rules <dir>', 'rules folder whose policy.yaml names the users file', './rules')
    .option('--users-file <file>', 'users file (default: proxy_auth.users_file of policy.yaml, else RULES/users)')
    .action(async (name: string, options: { rules: string; usersFile?: string }) => {
      if (!isValidUserName(name)) throw new CliError(`user name "${name}" may only hold letters, digits, ".", "_" and "-" (at most 64)`);
      const file = options.usersFile ?? (await usersFileOf(options.rules));
      const password = (await readStdin()).split(/\r?\n/, 1)[0] ?? '';
      if (password.length < 6) throw new CliError('give the password on stdin (one line, at least 6 characters), e.g. `read -rs P; echo "$P" | lachan users add NAME`');
      let text = '';
      try {
        text = readFileSync(file, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new CliError(`cannot read ${file}: ${(error as Error).message}`);
      }
      const next = upsertUser(text, name, hashPassword(password));
      const temporary = `${file}.${process.pid}.tmp`;
      try {
        writeFileSync(temporary, next, { mode: 0o600 });
        renameSync(temporary, file);
      } catch (error) {
        throw new CliError(`cannot write ${file}: ${(error as Error).message}`);
      }
      process.stdout.write(`${name} saved in ${file}\n`);
    });
}

async function usersFileOf(rulesDir: string): Promise<string> {
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

function parsePort(text: string, option: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`${option} must be a port number (0–65535), not "${text}"`);
  return port;
}

/** The district overlay in force: the last one that verified, kept in the data folder. */
function overlayOf(options: ServeOptions): PolicyOverlay | null {
  return options.centralKey === undefined ? null : readStoredOverlay(options.data);
}

async function loadOrExplain(options: ServeOptions): Promise<Awaited<ReturnType<typeof loadPolicy>>> {
  const rulesDir = options.rules;
  try {
    return await loadPolicy(rulesDir, { overlay: overlayOf(options) });
  } catch (error) {
    if (error instanceof RulesLoadError) throw new CliError(`${error.message}\n(run "lachan rules lint --rules ${rulesDir}")`);
    throw error;
  }
}

/** Builds the proxy of one process: policy, resolver, event log, server. */
async function startProxy(options: ServeOptions, port: number, logger: Logger, onStudentRequest: () => void): Promise<{ proxy: ProxyServer; eventLog: GatewayEventLog; port: number; transparent: Record<string, number>; reload: () => Promise<void> }> {
  const policy = await loadOrExplain(options);
  let resolver: Resolver;
  try {
    resolver = new Resolver(options.hostsFile ?? null, options.dnsServer ?? []);
  } catch (error) {
    throw new CliError(`cannot read --hosts-file: ${(error as Error).message}`);
  }
  let ca: CertificateAuthority | null;
  try {
    ca = await loadCa(options.certs);
  } catch (error) {
    throw new CliError(`cannot use the CA in ${options.certs}: ${(error as Error).message}`);
  }
  if (ca !== null) logger.info({ certs: path.resolve(options.certs) }, 'HTTPS interception on: blocked sites get the block page, inspected profiles are decided per URL');
  const eventLog = openEventLog({ dataDir: options.data, school: options.school ?? null, shipping: options.central !== undefined, maxUnflushed: Number(options.eventsInMemory), logger });
  let boundPort = port;
  const proxy = new ProxyServer({
    policy,
    resolver,
    eventLog,
    logger,
    ca,
    accessLog: options.accessLog === true,
    limits: { upstreamHeadersTimeoutMs: Number(options.upstreamTimeout) * 1000, headersTimeoutMs: Number(options.headerTimeout) },
    advertisedProxy: () => `${options.host === '0.0.0.0' || options.host === '::' ? 'lachan.local' : options.host}:${boundPort}`,
    onStudentRequest,
  });
  boundPort = await proxy.listen(port, options.host);
  const transparent: Record<string, number> = {};
  if (options.transparentHttp !== undefined) {
    transparent.transparentHttpPort = (await startTransparentHttp(proxy, parsePort(options.transparentHttp, '--transparent-http'), options.host)).port;
  }
  if (options.transparentHttps !== undefined) {
    transparent.transparentHttpsPort = (await startTransparentHttps(proxy, parsePort(options.transparentHttps, '--transparent-https'), options.host)).port;
  }
  const reload = async (): Promise<void> => {
    const started = Date.now();
    try {
      const next = await loadPolicy(options.rules, { overlay: overlayOf(options) });
      proxy.setPolicy(next);
      proxy.metrics.reloads++;
      logger.info({ ms: Date.now() - started, rules: path.resolve(options.rules) }, 'rules reloaded');
    } catch (error) {
      proxy.metrics.reloadFailures++;
      const problems = error instanceof RulesLoadError ? error.problems.filter((p) => p.severity === 'error').map(formatProblem) : [(error as Error).message];
      logger.error({ problems }, 'rules reload refused; the rules already loaded keep serving');
    }
  };
  return { proxy, eventLog, port: boundPort, transparent, reload };
}

function startPolicyPolling(options: ServeOptions, logger: Logger, reload: () => void): { stop(): void } | null {
  if (options.central === undefined || options.centralKey === undefined) {
    if (options.central !== undefined) logger.warn({}, 'no --central-key: the district policy overlay is not fetched');
    return null;
  }
  const seconds = Number(options.policyInterval);
  if (!(seconds > 0)) throw new CliError(`--policy-interval must be a number of seconds, not "${options.policyInterval}"`);
  try {
    return startOverlayPoller({ centralUrl: options.central, schoolId: options.school!, tokenFile: options.tokenFile!, keyFile: options.centralKey, dataDir: options.data, intervalMs: seconds * 1000, onOverlay: reload, logger });
  } catch (error) {
    throw new CliError(`cannot use --central-key ${options.centralKey}: ${(error as Error).message}`);
  }
}

function startShipping(options: ServeOptions, logger: Logger, eventLog?: GatewayEventLog): Shipper | null {
  if (options.central === undefined) return null;
  return startShipper({ eventLog, dataDir: options.data, centralUrl: options.central, schoolId: options.school!, tokenFile: options.tokenFile!, logger });
}

async function runSingle(options: ServeOptions, port: number, adminPort: number, logger: Logger): Promise<void> {
  let shipper: Shipper | null = null;
  const { proxy, eventLog, port: boundPort, transparent, reload } = await startProxy(options, port, logger, () => shipper?.wake());
  shipper = startShipping(options, logger, eventLog);
  const admin = await startAdminServer(adminPort, {
    healthy: () => true,
    degraded: async () => degradedParts([eventLog.stats()]),
    metrics: async () => renderMetrics(proxy.metrics.snapshot(proxy.policy.cacheStats()), eventMetrics([eventLog.stats()])),
  });
  const watcher = watchRules(options.rules, () => void reload());
  process.on('SIGHUP', () => void reload());
  const overlayPoller = startPolicyPolling(options, logger, () => void reload());
  logger.info({ port: boundPort, adminPort: admin.port, ...transparent, workers: 1, rules: path.resolve(options.rules) }, 'listening');
  const missing = missingProxyFlags(process.execArgv);
  if (missing.length > 0) logger.warn({ missing }, 'started without the V8 flags the proxy is tuned with: bursts after idle spells will be slower (start it as `lachan serve`, or see deploy/lachan.service)');
  onShutdown(logger, async () => {
    overlayPoller?.stop();
    watcher.close();
    admin.server.close();
    await proxy.close(SHUTDOWN_GRACE_MS);
    await shipper?.stop();
    await eventLog.close();
  });
}

/** The /healthz "degraded" lines of the event logs' stats. */
function degradedParts(stats: readonly EventStatsLite[]): string[] {
  return stats.some((s) => s.unwritable) ? ['event-store-unwritable'] : [];
}

function eventMetrics(stats: readonly EventStatsLite[]): string[] {
  const pending = stats.reduce((sum, s) => sum + s.pending, 0);
  const dropped = stats.reduce((sum, s) => sum + s.dropped, 0);
  const over = stats.some((s) => s.overLimit) ? 1 : 0;
  const unwritable = stats.some((s) => s.unwritable) ? 1 : 0;
  return [
    '# HELP lachan_event_store_unwritable 1 while the event store refuses writes (disk full, read-only): events wait in memory, filtering continues.', '# TYPE lachan_event_store_unwritable gauge', `lachan_event_store_unwritable ${unwritable}`,
    '# TYPE lachan_events_pending gauge', `lachan_events_pending ${pending}`,
    '# TYPE lachan_events_dropped_total counter', `lachan_events_dropped_total ${dropped}`,
    '# HELP lachan_event_store_over_limit 1 when the local event store nears its disk bound.', '# TYPE lachan_event_store_over_limit gauge', `lachan_event_store_over_limit ${over}`,
  ];
}

function onShutdown(logger: Logger, close: () => Promise<void>): void {
  let closing = false;
  const stop = (signal: string): void => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'draining');
    const force = setTimeout(() => process.exit(0), SHUTDOWN_GRACE_MS + 2_000);
    force.unref();
    close().then(
      () => process.exit(0),
      (error: Error) => {
        logger.error({ err: error.message }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

async function runPrimary(options: ServeOptions, port: number, adminPort: number, workers: number, logger: Logger): Promise<void> {
  if (cluster.isWorker) return runWorker(options, port, logger);
  // Fail early, in the primary, on rules the workers would refuse.
  await loadOrExplain(options);
  const live = new Set<Worker>();
  let stopping = false;
  let announced = false;
  // Workers start with the proxy's V8 flags however the primary was started.
  cluster.setupPrimary({ execArgv: withProxyFlags(process.execArgv) });
  const fork = (): void => {
    const worker = cluster.fork();
    live.add(worker);
    worker.on('message', (message: ToPrimary) => {
      if (message.type === 'listening' && !announced) {
        announced = true;
        logger.info({ port: message.port, adminPort: adminBound, workers, rules: path.resolve(options.rules) }, 'listening');
      } else if (message.type === 'student-request') shipper?.wake();
    });
    worker.on('exit', (code, signal) => {
      live.delete(worker);
      if (!stopping) {
        logger.error({ code, signal }, 'proxy worker died; starting another');
        fork();
      }
    });
  };
  let adminBound = adminPort;
  const admin = await startAdminServer(adminPort, {
    healthy: () => live.size > 0,
    degraded: async () => degradedParts((await askWorkers(live)).flatMap((r) => (r.eventStats === null ? [] : [r.eventStats]))),
    metrics: () => gatherMetrics(live),
  });
  adminBound = admin.port;
  for (let i = 0; i < workers; i++) fork();
  const shipper = startShipping(options, logger);
  const broadcast = (message: ToWorker): void => {
    for (const worker of live) worker.send(message);
  };
  const watcher = watchRules(options.rules, () => broadcast({ type: 'reload' }));
  process.on('SIGHUP', () => broadcast({ type: 'reload' }));
  const overlayPoller = startPolicyPolling(options, logger, () => broadcast({ type: 'reload' }));
  onShutdown(logger, async () => {
    stopping = true;
    overlayPoller?.stop();
    watcher.close();
    admin.server.close();
    const exited = [...live].map((worker) => new Promise<void>((resolve) => worker.once('exit', () => resolve())));
    broadcast({ type: 'shutdown' });
    await Promise.all(exited);
    await shipper?.stop();
  });
}

let metricsRequest = 0;

type WorkerReply = { snapshot: MetricsSnapshot; eventStats: EventStatsLite | null };

/** Each live worker's metrics and event-log figures (a worker silent for a second is left out). */
async function askWorkers(workers: ReadonlySet<Worker>): Promise<WorkerReply[]> {
  const id = ++metricsRequest;
  const replies = await Promise.all(
    [...workers].map(
      (worker) =>
        new Promise<WorkerReply | null>((resolve) => {
          const timer = setTimeout(() => resolve(null), 1_000);
          const onMessage = (message: ToPrimary): void => {
            if (message.type === 'metrics' && message.id === id) {
              clearTimeout(timer);
              worker.off('message', onMessage);
              resolve(message);
            }
          };
          worker.on('message', onMessage);
          worker.send({ type: 'metrics', id } satisfies ToWorker);
        }),
    ),
  );
  return replies.filter((r) => r !== null);
}

async function gatherMetrics(workers: ReadonlySet<Worker>): Promise<string> {
  const present = await askWorkers(workers);
  return renderMetrics(mergeSnapshots(present.map((r) => r.snapshot)), eventMetrics(present.flatMap((r) => (r.eventStats === null ? [] : [r.eventStats]))));
}

async function runWorker(options: ServeOptions, port: number, logger: Logger): Promise<void> {
  const { proxy, eventLog, port: boundPort, reload } = await startProxy(options, port, logger, () => process.send?.({ type: 'student-request' } satisfies ToPrimary));
  process.on('message', (message: ToWorker) => {
    if (message.type === 'reload') void reload();
    else if (message.type === 'metrics') {
      const stats = eventLog.stats();
      process.send?.({ type: 'metrics', id: message.id, snapshot: proxy.metrics.snapshot(proxy.policy.cacheStats()), eventStats: { pending: stats.pending, overLimit: stats.overLimit, dropped: stats.dropped, unwritable: stats.unwritable } } satisfies ToPrimary);
    } else if (message.type === 'shutdown') {
      void proxy.close(SHUTDOWN_GRACE_MS).then(() => eventLog.close()).then(() => process.exit(0));
    }
  });
  // SIGTERM reaches the whole process group; the primary coordinates.
  process.on('SIGTERM', () => undefined);
  process.on('SIGHUP', () => undefined);
  process.send?.({ type: 'listening', port: boundPort } satisfies ToPrimary);
}
