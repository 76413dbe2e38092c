/*
 * `lachan serve` (docs/contract.md §2): the gateway's composition root. It reads every
 * option, builds each part (policy loader, CA, event log, shipper, list refresher, proxy
 * with its injected upstreams) and wires their lifecycles: single process, or a cluster
 * primary that supervises workers, reloads them and gathers their metrics. Over ~400
 * lines because that wiring is read top to bottom in one place; the parts themselves
 * live in their own modules, and the cluster supervisor is the next piece to move out.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { accessSync, constants as fsConstants, mkdirSync } from 'node:fs';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { domainFilesOrigin, loadPolicy, type LoadOptions } from '../rules/loader.js';
import { readAppliedLists, listsFileOf } from '../lists/applied.js';
import { readListsConfig } from '../lists/config.js';
import { listMetricLines, startListRefresher } from '../lists/refresher.js';
import { RulesLoadError, formatProblem } from '../rules/problems.js';
import { watchRules } from '../rules/watch.js';
import type { PolicyOverlay } from '../rules/overlay.js';
import { startOverlayPoller } from '../rules/overlay-poller.js';
import { readStoredOverlay } from '../rules/overlay-stored.js';
import { openEventLog, type GatewayEventLog } from '../events/log.js';
import { startErasureSender } from '../privacy/erasure-queue.js';
import { startShipper, type Shipper } from '../events/shipper.js';
import { ProxyServer } from '../proxy/server.js';
import { withDefaultLimits } from '../proxy/limits.js';
import { createUpstream } from '../proxy/upstream.js';
import { startTransparentHttp, startTransparentHttps } from '../proxy/transparent.js';
import { Resolver } from '../proxy/resolver.js';
import { startAdminServer } from '../proxy/admin.js';
import { loadCa, type CertificateAuthority } from '../tls/index.js';
import { DeviceTrust, type DeviceRecord, type DeviceTrustSnapshot } from '../proxy/device-trust.js';
import { DeviceTrustWriter, readDeviceTrust } from '../proxy/device-trust-file.js';
import { mergeSnapshots, renderMetrics, type MetricsSnapshot } from '../proxy/metrics.js';
import { CliError, EXIT_USAGE, rulesRefused, type WorkerFailure } from './errors.js';
import { missingProxyFlags, withProxyFlags, withProxyMallocEnv } from './v8-flags.js';
import { collectGarbage } from './collect-garbage.js';
import { startSafeguarding, type Safeguarding } from '../safeguarding/safeguarding.js';
import { AlertOutbox } from '../safeguarding/outbox.js';
import { openClassroom, startClassroomSweeper } from '../classroom/index.js';

export interface ServeOptions {
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
  shipInterval: string;
  workers?: string;
  adminPort: string;
  accessLog?: boolean;
  eventsInMemory: string;
  logLevel: string;
  upstreamTimeout: string;
  connectTimeout: string;
  headerTimeout: string;
  maxConnections: string;
  maxClientConnections: string;
  staffProfiles: string;
  classroomMinuteMs?: string;
}

/** Messages between the primary and proxy workers. */
type ToWorker =
  | { type: 'reload' }
  | { type: 'metrics'; id: number }
  | { type: 'shutdown' }
  /** The certs folder changed: load the CA again. */
  | { type: 'reload-ca' }
  /** What the primary knows of devices' trust in the CA (at start), and each change since. */
  | { type: 'device-trust'; snapshot: DeviceTrustSnapshot }
  | { type: 'device'; address: string; record: DeviceRecord };
type ToPrimary =
  | { type: 'metrics'; id: number; snapshot: MetricsSnapshot; eventStats: EventStatsLite | null }
  /** A device showed (or refused) trust in the CA in this worker. */
  | { type: 'device'; address: string; record: DeviceRecord }
  | { type: 'listening'; port: number }
  /** A review request or report was stored: the primary's shipper sends it now. */
  | { type: 'student-request' }
  /** The worker could not start (busy port, unusable folder): the primary says so once and stops. */
  | WorkerFailure;
type EventStatsLite = { pending: number; overLimit: boolean; dropped: number; unwritable: boolean };

const SHUTDOWN_GRACE_MS = 3_000;
/** How often a proxy started by npm checks that npm is still there. */
const LAUNCHER_CHECK_MS = 500;

/** `lachan serve` once its options are read (src/cli/serve-command.ts defines them): checks them, then runs one process or a cluster. */
export async function serve(options: ServeOptions): Promise<void> {
  const port = parsePort(options.port, '--port');
  const adminPort = parsePort(options.adminPort, '--admin-port');
  const workers = options.workers === undefined ? availableParallelism() : Number(options.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new CliError(`--workers phải là số nguyên từ 1 đến 64, không phải "${options.workers}"`);
  const shipping = options.central !== undefined || options.school !== undefined || options.tokenFile !== undefined;
  if (shipping && (options.central === undefined || options.school === undefined || options.tokenFile === undefined)) {
    throw new CliError('--central, --school và --token-file phải đi cùng nhau');
  }
  if (!(Number(options.shipInterval) > 0)) throw new CliError(`--ship-interval phải là số giây, không phải "${options.shipInterval}"`);
  const inMemory = Number(options.eventsInMemory);
  if (!Number.isInteger(inMemory) || inMemory < 1) throw new CliError(`--events-in-memory must be a whole number of events, not "${options.eventsInMemory}"`);
  const upstreamTimeout = Number(options.upstreamTimeout);
  if (!(upstreamTimeout > 0)) throw new CliError(`--upstream-timeout phải là số giây, không phải "${options.upstreamTimeout}"`);
  const connectTimeout = Number(options.connectTimeout);
  // Past Node's largest timer (~24 days) a deadline would fire at once: a bound well inside it.
  if (!(connectTimeout > 0 && connectTimeout <= 300)) throw new CliError(`--connect-timeout phải là số giây (đến 300), không phải "${options.connectTimeout}"`);
  const headerTimeout = Number(options.headerTimeout);
  if (!Number.isInteger(headerTimeout) || headerTimeout < 100)
    throw new CliError(`--header-timeout phải là số mili giây (từ 100), không phải "${options.headerTimeout}"`);
  for (const [flag, value] of [
    ['--max-connections', options.maxConnections],
    ['--max-client-connections', options.maxClientConnections],
  ] as const) {
    if (!/^[1-9]\d{0,6}$/.test(value)) throw new CliError(`${flag} phải là một số nguyên kết nối, không phải "${value}"`);
  }
  const unwritable = ensureDataDir(options.data);
  if (unwritable !== null) {
    process.stderr.write(
      `cảnh báo: chưa ghi được vào thư mục dữ liệu --data ${options.data} (${unwritable}); vẫn lọc bình thường, sự kiện chặn chờ trong bộ nhớ cho tới khi ghi được\n`,
    );
  }
  const logger = pino({ level: options.logLevel, base: { pid: process.pid } });
  if (workers === 1) await runSingle(options, port, adminPort, logger);
  else await runPrimary(options, port, adminPort, workers, logger);
}

/** The data folder must exist (it is created) and be writable, or serve says so in one line before anything starts. */
/**
 * The data folder, made if missing. One that cannot be a folder (a file, a path that
 * cannot be made) stops `serve` with one line; one that exists but cannot be written
 * (a read-only disk) does not: filtering must not depend on the event log, which keeps
 * events in memory and writes them once it can (docs/events.md). Returns why it cannot
 * be written, or null.
 */
function ensureDataDir(dir: string): string | null {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'EEXIST' || code === 'ENOTDIR'
        ? 'đó là một tệp, không phải thư mục'
        : code === 'EACCES' || code === 'EPERM'
          ? 'tài khoản chạy lachan không có quyền tạo thư mục đó'
          : code === 'EROFS'
            ? 'ổ đĩa chỉ cho đọc'
            : (error as Error).message;
    throw new CliError(`không dùng được thư mục dữ liệu --data ${dir}: ${why}`);
  }
  try {
    accessSync(dir, fsConstants.W_OK);
    return null;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'EROFS'
      ? 'ổ đĩa chỉ cho đọc'
      : code === 'EACCES' || code === 'EPERM'
        ? 'tài khoản chạy lachan không có quyền ghi vào đó'
        : (error as Error).message;
  }
}

/** A listening socket, or one line saying why not (a port taken by another program, a port below 1024, an address not on this machine). */
async function listenOrExplain<T>(listening: Promise<T>, option: string, port: number, host: string): Promise<T> {
  try {
    return await listening;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE')
      throw new CliError(
        `cổng ${port} đang được dùng (${option}): một lachan khác hoặc chương trình khác (squid…) đang nghe ở ${host}:${port}; dừng chương trình đó hoặc chọn ${option} khác`,
      );
    if (code === 'EACCES') throw new CliError(`không được mở cổng ${port} (${option}): cổng dưới 1024 cần quyền root hoặc CAP_NET_BIND_SERVICE`);
    if (code === 'EADDRNOTAVAIL') throw new CliError(`địa chỉ --host ${host} không thuộc máy này`);
    throw error;
  }
}

function parsePort(text: string, option: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`${option} phải là số cổng (0–65535), không phải "${text}"`);
  return port;
}

/** The district overlay in force: the last one that verified, kept in the data folder. */
function overlayOf(options: ServeOptions): PolicyOverlay | null {
  return options.centralKey === undefined ? null : readStoredOverlay(options.data);
}

/** What a load adds to the rules folder: the district overlay and the downloaded lists in force. */
async function loadInputs(options: ServeOptions): Promise<LoadOptions> {
  return { overlay: overlayOf(options), lists: await readAppliedLists(options.rules, options.data), beforeCompile: collectGarbage };
}

async function loadOrExplain(options: ServeOptions): Promise<Awaited<ReturnType<typeof loadPolicy>>> {
  const rulesDir = options.rules;
  try {
    return await loadPolicy(rulesDir, await loadInputs(options));
  } catch (error) {
    if (error instanceof RulesLoadError) throw rulesRefused(error, rulesDir);
    throw error;
  }
}

/**
 * The school CA of --certs, or null when the folder holds none. `previous`: the CA in
 * force, kept (and returned) when the files still hold the same certificate, so its
 * leaf cache survives a spurious change event.
 */
async function loadCaOrExplain(options: ServeOptions, previous: CertificateAuthority | null = null): Promise<CertificateAuthority | null> {
  try {
    const ca = await loadCa(options.certs);
    return ca !== null && previous !== null && ca.fingerprint256 === previous.fingerprint256 ? previous : ca;
  } catch (error) {
    throw new CliError(`không dùng được CA trong ${options.certs}: ${(error as Error).message}`);
  }
}

/**
 * Loads the CA again after its folder changed (`lachan ca init`, a new CA copied in)
 * or on SIGHUP. A CA that cannot be used is refused and the one in force keeps serving.
 */
async function reloadCa(options: ServeOptions, current: CertificateAuthority | null, logger: Logger): Promise<CertificateAuthority | null> {
  try {
    const next = await loadCaOrExplain(options, current);
    if (next !== current)
      logger.info(
        { certs: path.resolve(options.certs), fingerprint: next?.fingerprint256 ?? null },
        next === null ? 'school CA removed: HTTPS is no longer intercepted' : 'school CA loaded: new connections get certificates from it',
      );
    return next;
  } catch (error) {
    logger.error({ err: (error as Error).message }, 'CA reload refused; the CA already loaded keeps serving');
    return current;
  }
}

/** Watches the certs folder (created if missing, so a CA made later is seen). */
function watchCerts(options: ServeOptions, onChange: () => void): { close(): void } {
  try {
    mkdirSync(options.certs, { recursive: true, mode: 0o755 });
    // The rules watcher is a debounced folder watch: the same thing the CA needs.
    return watchRules(options.certs, onChange);
  } catch {
    // An unwatchable folder: SIGHUP still reloads the CA.
    return { close: () => undefined };
  }
}

/** Device trust in the CA, from the data folder; written back there by the process that owns it. */
function openDeviceTrust(options: ServeOptions, logger: Logger): { trust: DeviceTrust; writer: DeviceTrustWriter } {
  const trust = new DeviceTrust(readDeviceTrust(options.data));
  const writer = new DeviceTrustWriter(trust, options.data, (error) => logger.error({ err: error.message }, 'cannot save which devices trust the CA'));
  trust.onLearned(() => writer.schedule());
  trust.onReset(() => writer.schedule());
  return { trust, writer };
}

const mib = (bytes: number): number => Math.round(bytes / (1024 * 1024));

/** Builds the proxy of one process: policy, resolver, event log, server. */
async function startProxy(
  options: ServeOptions,
  port: number,
  logger: Logger,
  onStudentRequest: () => void,
  deviceTrust: DeviceTrust,
): Promise<{
  proxy: ProxyServer;
  eventLog: GatewayEventLog;
  port: number;
  transparent: Record<string, number>;
  reload: () => Promise<void>;
  reloadCa: () => Promise<void>;
  safeguarding: Safeguarding;
}> {
  const policy = await loadOrExplain(options);
  // As after a reload: what the load left behind (list pieces, the brand derivers, the
  // domain builder's arrays) is freed now, not when the heap has grown to four times
  // its live size, so a worker serves at the size of its policy.
  collectGarbage();
  let resolver: Resolver;
  try {
    resolver = new Resolver(options.hostsFile ?? null, options.dnsServer ?? []);
  } catch (error) {
    throw new CliError(`không đọc được --hosts-file: ${(error as Error).message}`);
  }
  const ca = await loadCaOrExplain(options);
  if (ca !== null)
    logger.info({ certs: path.resolve(options.certs) }, 'HTTPS interception on: blocked sites get the block page, inspected profiles are decided per URL');
  const eventLog = openEventLog({
    dataDir: options.data,
    school: options.school ?? null,
    shipping: options.central !== undefined,
    maxUnflushed: Number(options.eventsInMemory),
    logger,
  });
  // A new or escalated alert wakes the shipper as a student's request does (docs/safeguarding.md).
  const safeguarding = await startSafeguarding({
    rulesDir: options.rules,
    dataDir: options.data,
    shipping: options.central !== undefined,
    logger,
    pseudonym: (address) => eventLog.clientPseudonym(address),
    onAlert: onStudentRequest,
  }).catch((error: unknown) => {
    throw error instanceof RulesLoadError ? rulesRefused(error, options.rules) : error;
  });
  let boundPort = port;
  let proxyRef: ProxyServer | null = null;
  const minuteMs = options.classroomMinuteMs === undefined ? undefined : Number(options.classroomMinuteMs);
  if (minuteMs !== undefined && !(Number.isInteger(minuteMs) && minuteMs >= 1))
    throw new CliError(`--classroom-minute-ms phải là số mili giây, không phải "${options.classroomMinuteMs}"`);
  const classroom = openClassroom({
    dataDir: options.data,
    rulesDir: options.rules,
    // Asked only when a page is served, once the proxy exists; the first policy is not kept alive by it.
    policy: () => proxyRef!.policy,
    recorder: eventLog,
    onRecorded: () => {
      eventLog.flush();
      onStudentRequest();
    },
    staffProfiles: options.staffProfiles,
    minuteMs,
    logger,
  });
  const limits = withDefaultLimits({
    upstreamHeadersTimeoutMs: Number(options.upstreamTimeout) * 1000,
    upstreamConnectTimeoutMs: Number(options.connectTimeout) * 1000,
    headersTimeoutMs: Number(options.headerTimeout),
    maxConnections: Number(options.maxConnections),
    maxClientConnections: Number(options.maxClientConnections),
  });
  const proxy = new ProxyServer({
    policy,
    resolver,
    recorder: eventLog,
    // The upstream clients dial only what the resolver vetted; the proxy closes them when it closes.
    upstream: createUpstream(resolver, limits),
    logger,
    ca,
    deviceTrust,
    accessLog: options.accessLog === true,
    limits,
    // Clients are named in logs and /metrics by the device id events carry, never by address.
    clientName: (address) => eventLog.clientPseudonym(address),
    advertisedProxy: () => `${options.host === '0.0.0.0' || options.host === '::' ? 'lachan.local' : options.host}:${boundPort}`,
    onStudentRequest,
    hooks: { ...safeguarding.hooks, decide: classroom.decide },
    staffPage: classroom.staffPage,
  });
  proxyRef = proxy;
  const unknownStaff = classroom.unknownStaffProfiles(policy);
  if (unknownStaff.length > 0)
    logger.warn({ unknownStaff }, '--staff-profiles names profiles the rules do not have: no device of theirs reaches the classroom page');
  boundPort = await listenOrExplain(proxy.listen(port, options.host), '--port', port, options.host);
  const transparent: Record<string, number> = {};
  if (options.transparentHttp !== undefined) {
    const transparentPort = parsePort(options.transparentHttp, '--transparent-http');
    transparent.transparentHttpPort = (
      await listenOrExplain(startTransparentHttp(proxy, transparentPort, options.host), '--transparent-http', transparentPort, options.host)
    ).port;
  }
  if (options.transparentHttps !== undefined) {
    const transparentPort = parsePort(options.transparentHttps, '--transparent-https');
    transparent.transparentHttpsPort = (
      await listenOrExplain(startTransparentHttps(proxy, transparentPort, options.host), '--transparent-https', transparentPort, options.host)
    ).port;
  }
  const reload = async (): Promise<void> => {
    const started = Date.now();
    try {
      // The garbage of serving goes first, so the new policy compiles beside the live one only.
      collectGarbage();
      // Unchanged domain files are shared with the serving policy, not compiled again (src/rules/loader.ts).
      const next = await loadPolicy(options.rules, { ...(await loadInputs(options)), reuse: proxy.policy });
      proxy.setPolicy(next);
      await safeguarding.reload();
      classroom.classroom.reloadExamAllow();
      collectGarbage();
      proxy.metrics.reloads++;
      // V8's heap does not shrink under the proxy's flags: its size now is about its size at the compile's peak.
      const memory = process.memoryUsage();
      logger.info(
        {
          ms: Date.now() - started,
          rules: path.resolve(options.rules),
          domainFiles: domainFilesOrigin(next),
          rssMiB: mib(memory.rss),
          heapMiB: mib(memory.heapTotal),
          arrayBuffersMiB: mib(memory.arrayBuffers),
        },
        'rules reloaded',
      );
    } catch (error) {
      proxy.metrics.reloadFailures++;
      const problems = error instanceof RulesLoadError ? error.problems.filter((p) => p.severity === 'error').map(formatProblem) : [(error as Error).message];
      logger.error({ problems }, 'rules reload refused; the rules already loaded keep serving');
    }
  };
  const reloadCaNow = async (): Promise<void> => proxy.setCa(await reloadCa(options, proxy.certificateAuthority, logger));
  return { proxy, eventLog, port: boundPort, transparent, reload, reloadCa: reloadCaNow, safeguarding };
}

function startPolicyPolling(options: ServeOptions, logger: Logger, reload: () => void): { stop(): void } | null {
  if (options.central === undefined || options.centralKey === undefined) {
    if (options.central !== undefined) logger.warn({}, 'no --central-key: the district policy overlay is not fetched');
    return null;
  }
  const seconds = Number(options.policyInterval);
  if (!(seconds > 0)) throw new CliError(`--policy-interval phải là số giây, không phải "${options.policyInterval}"`);
  try {
    return startOverlayPoller({
      centralUrl: options.central,
      schoolId: options.school!,
      tokenFile: options.tokenFile!,
      keyFile: options.centralKey,
      dataDir: options.data,
      intervalMs: seconds * 1000,
      onOverlay: reload,
      logger,
    });
  } catch (error) {
    throw new CliError(`không dùng được --central-key ${options.centralKey}: ${(error as Error).message}`);
  }
}

/** Keeps the subscribed lists fresh: from the collector when --central is set, else from their own addresses. */
function startListRefreshing(options: ServeOptions, logger: Logger, reload: () => void): { stop(): void } {
  const central = options.central === undefined ? null : { url: options.central, tokenFile: options.tokenFile! };
  return startListRefresher({ listsFile: listsFileOf(options.rules), dataDir: options.data, central, logger, onChange: reload });
}

async function listMetrics(options: ServeOptions): Promise<string[]> {
  const subscriptions = await readListsConfig(listsFileOf(options.rules)).catch(() => []);
  return listMetricLines(subscriptions, options.data);
}

function startShipping(options: ServeOptions, logger: Logger, eventLog?: GatewayEventLog): Shipper | null {
  if (options.central === undefined) return null;
  startErasureSender(options.data, { centralUrl: options.central, schoolId: options.school!, tokenFile: options.tokenFile! }, (error) =>
    logger.warn({ err: error.message }, 'erasure requests not sent yet; retrying'),
  );
  return startShipper({
    eventLog,
    alerts: new AlertOutbox(options.data),
    dataDir: options.data,
    centralUrl: options.central,
    schoolId: options.school!,
    tokenFile: options.tokenFile!,
    idleIntervalMs: Number(options.shipInterval) * 1000,
    logger,
  });
}

async function runSingle(options: ServeOptions, port: number, adminPort: number, logger: Logger): Promise<void> {
  let shipper: Shipper | null = null;
  const { trust, writer } = openDeviceTrust(options, logger);
  const {
    proxy,
    eventLog,
    port: boundPort,
    transparent,
    reload,
    reloadCa: reloadCaNow,
    safeguarding,
  } = await startProxy(options, port, logger, () => shipper?.wake(), trust);
  shipper = startShipping(options, logger, eventLog);
  const admin = await listenOrExplain(
    startAdminServer(adminPort, {
      healthy: () => true,
      degraded: async () => degradedParts([eventLog.stats()]),
      metrics: async () =>
        renderMetrics(proxy.metrics.snapshot(proxy.policy.cacheStats()), [...eventMetrics([eventLog.stats()]), ...(await listMetrics(options))]),
    }),
    '--admin-port',
    adminPort,
    '127.0.0.1',
  );
  const watcher = watchRules(options.rules, () => void reload());
  const certsWatcher = watchCerts(options, () => void reloadCaNow());
  process.on('SIGHUP', () => {
    void reload();
    void reloadCaNow();
  });
  const overlayPoller = startPolicyPolling(options, logger, () => void reload());
  const listRefresher = startListRefreshing(options, logger, () => void reload());
  const classroomSweeper = startClassroomSweeper(options.data, logger);
  logger.info({ port: boundPort, adminPort: admin.port, ...transparent, workers: 1, rules: path.resolve(options.rules) }, 'listening');
  const missing = missingProxyFlags(process.execArgv);
  if (missing.length > 0)
    logger.warn(
      { missing },
      'started without the V8 flags the proxy is tuned with: bursts after idle spells will be slower (start it as `lachan serve`, or see deploy/lachan.service)',
    );
  onShutdown(logger, async () => {
    classroomSweeper.stop();
    overlayPoller?.stop();
    listRefresher.stop();
    watcher.close();
    certsWatcher.close();
    admin.server.close();
    await proxy.close(SHUTDOWN_GRACE_MS);
    safeguarding.close();
    await shipper?.stop();
    await eventLog.close();
    await writer.flush();
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
    '# HELP lachan_event_store_unwritable 1 while the event store refuses writes (disk full, read-only): events wait in memory, filtering continues.',
    '# TYPE lachan_event_store_unwritable gauge',
    `lachan_event_store_unwritable ${unwritable}`,
    '# TYPE lachan_events_pending gauge',
    `lachan_events_pending ${pending}`,
    '# TYPE lachan_events_dropped_total counter',
    `lachan_events_dropped_total ${dropped}`,
    '# HELP lachan_event_store_over_limit 1 when the local event store nears its disk bound.',
    '# TYPE lachan_event_store_over_limit gauge',
    `lachan_event_store_over_limit ${over}`,
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
  watchLauncher(() => stop('launcher exited'));
}

/**
 * Started by npm (`npx lachan serve`, `npm start`): npm passes a SIGTERM on to the
 * shell it started us through, which dies without passing it on. Its parent gone,
 * the proxy stops too, workers and all, rather than holding the port as an orphan.
 * Not otherwise: `nohup lachan serve &` must outlive the shell that started it.
 */
function watchLauncher(stop: () => void): void {
  if (process.env.npm_command === undefined) return;
  const launcher = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== launcher) {
      clearInterval(timer);
      stop();
    }
  }, LAUNCHER_CHECK_MS);
  timer.unref();
}

async function runPrimary(options: ServeOptions, port: number, adminPort: number, workers: number, logger: Logger): Promise<void> {
  if (cluster.isWorker) return runWorker(options, port, logger);
  // Fail early, in the primary, on rules (and a CA) the workers would refuse.
  await loadOrExplain(options);
  let ca = await loadCaOrExplain(options);
  // The primary owns the device trust: workers tell it what they learn, it saves and tells the others.
  const { trust, writer } = openDeviceTrust(options, logger);
  trust.setCa(ca?.fingerprint256 ?? null);
  // On the next turn, when no frame of this function still holds the checked policy.
  setImmediate(collectGarbage);
  const live = new Set<Worker>();
  let stopping = false;
  let announced = false;
  let workersListening = 0;
  let listRefresher: { stop(): void } | null = null;
  // Workers start with the proxy's V8 flags however the primary was started.
  cluster.setupPrimary({ execArgv: withProxyFlags(process.execArgv) });
  const fork = (): void => {
    const worker = cluster.fork(withProxyMallocEnv(process.env));
    live.add(worker);
    worker.on('message', (message: ToPrimary) => {
      if (message.type === 'fatal') return failStartup(message);
      if (message.type === 'device') {
        if (trust.merge(message.address, message.record)) {
          writer.schedule();
          for (const other of live) if (other !== worker) other.send(message satisfies ToWorker);
        }
      } else if (message.type === 'listening') {
        // What was learned since the worker read the file (a worker started again after a crash).
        worker.send({ type: 'device-trust', snapshot: trust.snapshot() } satisfies ToWorker);
        // Lists are downloaded once, by the primary, and each worker reloads from the data
        // folder: start once every worker listens, so that no reload is sent before one can hear it.
        if (++workersListening === workers && !stopping) listRefresher ??= startListRefreshing(options, logger, () => broadcast({ type: 'reload' }));
        if (announced) return;
        announced = true;
        logger.info({ port: message.port, adminPort: adminBound, workers, rules: path.resolve(options.rules) }, 'listening');
      } else if (message.type === 'student-request') shipper?.wake();
    });
    worker.on('exit', (code, signal) => {
      live.delete(worker);
      // A worker that cannot start would fail again at once: stop rather than loop.
      if (!stopping && !announced && code === EXIT_USAGE)
        return failStartup({ type: 'fatal', message: 'một tiến trình proxy không khởi động được', exitCode: EXIT_USAGE });
      if (!stopping) {
        logger.error({ code, signal }, 'proxy worker died; starting another');
        fork();
      }
    });
  };
  /** A worker's startup error, said once; everything stops with its exit code. */
  const failStartup = (failure: WorkerFailure): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`lỗi: ${failure.message}\n`);
    // Nothing to drain: no worker has served yet.
    for (const worker of live) worker.process.kill('SIGKILL');
    const exit = (): never => process.exit(failure.exitCode);
    if (live.size === 0) exit();
    for (const worker of live) worker.once('exit', () => (live.size === 0 ? exit() : undefined));
    setTimeout(exit, SHUTDOWN_GRACE_MS).unref();
  };
  let adminBound = adminPort;
  const admin = await listenOrExplain(
    startAdminServer(adminPort, {
      healthy: () => live.size > 0,
      degraded: async () => degradedParts((await askWorkers(live)).flatMap((r) => (r.eventStats === null ? [] : [r.eventStats]))),
      metrics: async () => gatherMetrics(live, await listMetrics(options)),
    }),
    '--admin-port',
    adminPort,
    '127.0.0.1',
  );
  adminBound = admin.port;
  for (let i = 0; i < workers; i++) fork();
  const shipper = startShipping(options, logger);
  const broadcast = (message: ToWorker): void => {
    for (const worker of live) worker.send(message);
  };
  const watcher = watchRules(options.rules, () => broadcast({ type: 'reload' }));
  const reloadCaEverywhere = async (): Promise<void> => {
    const next = await reloadCa(options, ca, logger);
    if (next === ca) return;
    ca = next;
    trust.setCa(ca?.fingerprint256 ?? null);
    broadcast({ type: 'reload-ca' });
  };
  const certsWatcher = watchCerts(options, () => void reloadCaEverywhere());
  process.on('SIGHUP', () => {
    broadcast({ type: 'reload' });
    void reloadCaEverywhere();
  });
  const overlayPoller = startPolicyPolling(options, logger, () => broadcast({ type: 'reload' }));
  const classroomSweeper = startClassroomSweeper(options.data, logger);
  onShutdown(logger, async () => {
    stopping = true;
    classroomSweeper.stop();
    overlayPoller?.stop();
    listRefresher?.stop();
    watcher.close();
    certsWatcher.close();
    admin.server.close();
    const exited = [...live].map((worker) => new Promise<void>((resolve) => worker.once('exit', () => resolve())));
    broadcast({ type: 'shutdown' });
    await Promise.all(exited);
    await shipper?.stop();
    await writer.flush();
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

async function gatherMetrics(workers: ReadonlySet<Worker>, extra: readonly string[]): Promise<string> {
  const present = await askWorkers(workers);
  return renderMetrics(mergeSnapshots(present.map((r) => r.snapshot)), [
    ...eventMetrics(present.flatMap((r) => (r.eventStats === null ? [] : [r.eventStats]))),
    ...extra,
  ]);
}

async function runWorker(options: ServeOptions, port: number, logger: Logger): Promise<void> {
  // Listening before anything is awaited: the primary's snapshot may come at once.
  const trust = new DeviceTrust(readDeviceTrust(options.data));
  const mergeAll = (snapshot: DeviceTrustSnapshot): void => {
    for (const [address, record] of Object.entries(snapshot.devices)) trust.merge(address, record);
  };
  const early = (message: ToWorker): void => {
    if (message.type === 'device-trust') mergeAll(message.snapshot);
    else if (message.type === 'device') trust.merge(message.address, message.record);
  };
  process.on('message', early);
  trust.onLearned((address, record) => process.send?.({ type: 'device', address, record } satisfies ToPrimary));
  const {
    proxy,
    eventLog,
    port: boundPort,
    reload,
    reloadCa: reloadCaNow,
    safeguarding,
  } = await startProxy(options, port, logger, () => process.send?.({ type: 'student-request' } satisfies ToPrimary), trust);
  process.on('message', (message: ToWorker) => {
    if (message.type === 'reload') void reload();
    else if (message.type === 'reload-ca') void reloadCaNow();
    else if (message.type === 'metrics') {
      const stats = eventLog.stats();
      process.send?.({
        type: 'metrics',
        id: message.id,
        snapshot: proxy.metrics.snapshot(proxy.policy.cacheStats()),
        eventStats: { pending: stats.pending, overLimit: stats.overLimit, dropped: stats.dropped, unwritable: stats.unwritable },
      } satisfies ToPrimary);
    } else if (message.type === 'shutdown') {
      void proxy
        .close(SHUTDOWN_GRACE_MS)
        .then(() => safeguarding.close())
        .then(() => eventLog.close())
        .then(() => process.exit(0));
    }
  });
  // Ctrl-C and SIGTERM reach the whole process group; the primary coordinates.
  process.on('SIGTERM', () => undefined);
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);
  // The primary gone (killed outright): nothing will send connections or a shutdown.
  process.on(
    'disconnect',
    () =>
      void proxy
        .close(SHUTDOWN_GRACE_MS)
        .then(() => safeguarding.close())
        .then(() => eventLog.close())
        .finally(() => process.exit(0)),
  );
  process.send?.({ type: 'listening', port: boundPort } satisfies ToPrimary);
}
