import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { preparePageScan } from '../content/page-scan.js';
import type { Policy } from '../policy/engine.js';
import { organisationOf } from '../rules/loader.js';
import type { CertificateAuthority } from '../tls/index.js';
import { ConnectionAdmission, type LimitHit } from './admission.js';
import { ProxyAuthenticator } from './auth.js';
import { DeviceTrust } from './device-trust.js';
import type { Flow, FlowClient, FlowMode } from './flow.js';
import { GatewayPages, type StaffPageHandler } from './gateway-pages.js';
import { withDefaultHooks, type ProxyHooks } from './hooks.js';
import { Interceptor, type TunnelClient } from './intercept.js';
import { DEFAULT_LIMITS, withDefaultLimits, type ProxyLimits } from './limits.js';
import { ProxyMetrics } from './metrics.js';
import type { ErrorKind } from './pages.js';
import { RequestPipeline } from './pipeline.js';
import type { BlockRecorder, ReviewRecorder } from './ports.js';
import type { Resolver } from './resolver.js';
import { AUTH_REQUIRED, errorAnswer, sendAnswer, writeRawAnswer } from './responder.js';
import { StudentRequests } from './student-requests.js';
import { parseAbsoluteTarget, parseConnectTarget, parseOriginFormTarget, type Target } from './target.js';
import type { Upstream } from './upstream.js';

export { DEFAULT_LIMITS, type ProxyLimits };

export interface ProxyOptions {
  readonly policy: Policy;
  readonly resolver: Resolver;
  /** Where blocks and review requests are recorded (the gateway's event log); null: nowhere. */
  readonly recorder: (BlockRecorder & ReviewRecorder) | null;
  /** The clients requests are forwarded through (upstream.ts); the proxy closes them when it closes. */
  readonly upstream: Upstream;
  readonly logger: Logger;
  readonly limits?: Partial<ProxyLimits>;
  readonly accessLog?: boolean;
  /** Where later work attaches to the request path (hooks.ts); the defaults do what the rules say. */
  readonly hooks?: Partial<ProxyHooks>;
  /**
   * The school CA: blocked CONNECTs get the block page over TLS, inspected profiles
   * are intercepted, on devices their range's `intercept` mode allows. Replaced with setCa().
   */
  readonly ca?: CertificateAuthority | null;
  /** Which devices trust the CA (shared across workers by the caller). Default: a fresh one. */
  readonly deviceTrust?: DeviceTrust;
  /** Host and port devices should use, for the PAC file. */
  readonly advertisedProxy: () => string;
  /** Called when a review request or report was stored (the shipper sends it now rather than at its next tick). */
  readonly onStudentRequest?: () => void;
  /** The teachers' classroom page (src/classroom); absent: not served. */
  readonly staffPage?: StaffPageHandler | null;
  /** The name a client is logged and counted under: its pseudonymous device id, as in events (addresses are not kept). */
  readonly clientName: (address: string) => string;
}

const LISTEN_BACKLOG = 4096;
const BAD_REQUEST = errorAnswer('bad-request', null);

/**
 * The proxy's listeners and the ways in: absolute-form HTTP, origin form (the gateway's
 * own pages), CONNECT, upgrades, transparent HTTP and HTTPS (transparent.ts) and
 * requests inside intercepted tunnels (intercept.ts). Each way in only works out the
 * target (target.ts) and who sent it, and hands the flow to the pipeline (pipeline.ts),
 * the one place where requests are decided and answered.
 */
export class ProxyServer {
  readonly server: Server;
  readonly metrics = new ProxyMetrics();
  readonly deviceTrust: DeviceTrust;
  private policyNow: Policy;
  private authenticator: ProxyAuthenticator | null;
  private ca: CertificateAuthority | null;
  private readonly limits: ProxyLimits;
  private readonly sockets = new Set<Socket | Duplex>();
  private readonly interceptor: Interceptor;
  private readonly pages: GatewayPages;
  private readonly pipeline: RequestPipeline;
  private readonly upstream: Upstream;
  private readonly admission: ConnectionAdmission;
  /** When each client was last logged as limited: one line a minute per client, not one per refusal. */
  private readonly limitLogged = new Map<string, number>();

  /** The options without the first policy: kept here, it would stay in memory beside every later one. */
  private readonly options: Omit<ProxyOptions, 'policy'>;

  constructor({ policy, ...options }: ProxyOptions) {
    this.options = options;
    this.limits = withDefaultLimits(options.limits);
    this.policyNow = policy;
    this.authenticator = makeAuthenticator(policy);
    preparePageScan(policy);
    this.upstream = options.upstream;
    this.ca = options.ca ?? null;
    this.deviceTrust = options.deviceTrust ?? new DeviceTrust();
    this.deviceTrust.setCa(this.ca?.fingerprint256 ?? null);
    this.admission = new ConnectionAdmission(this.limits, { onLimit: (hit) => this.onConnectionLimit(hit) });
    this.metrics.largestClient = () => this.admission.largestClient();
    const admission = this.admission;
    this.server = createServer(
      {
        maxHeaderSize: this.limits.maxHeaderBytes,
        headersTimeout: this.limits.headersTimeoutMs,
        requestTimeout: 0,
        keepAliveTimeout: this.limits.clientIdleMs,
        noDelay: true,
        // Node checks header deadlines on this tick (default 30 s): a slow client would otherwise get up to twice headersTimeout.
        connectionsCheckingInterval: 2_000,
        // An HTTP/1.1 request without Host is refused here, with the page, rather than by Node with an empty 400.
        requireHostHeader: false,
      },
      (req, res) => {
        admission.requestStarted(req.socket, res);
        this.onRequest(req, res);
      },
    );
    this.interceptor = new Interceptor(
      (req, res, client, authority) => this.onInterceptedRequest(req, res, client, authority),
      this.limits,
      (req, socket, head, client, authority) => this.onUpgrade(req, socket, head, { client, authority }),
    );
    const studentRequests = new StudentRequests({
      recorder: options.recorder,
      onRecorded: options.onStudentRequest,
      organisation: () => organisationOf(this.policyNow),
    });
    this.pages = new GatewayPages({
      policy: () => this.policyNow,
      ca: () => this.ca,
      deviceTrust: this.deviceTrust,
      studentRequests,
      advertisedProxy: options.advertisedProxy,
      staffPage: options.staffPage ?? null,
    });
    this.pipeline = new RequestPipeline({
      policy: () => this.policyNow,
      ca: () => this.ca,
      deviceTrust: this.deviceTrust,
      intercept: (ca, client, host, port, head, who, announce, onRefused) => this.interceptor.intercept(ca, client, host, port, head, who, announce, onRefused),
      blocks: options.recorder,
      upstream: options.upstream,
      tunnels: { resolver: options.resolver, connectTimeoutMs: this.limits.upstreamConnectTimeoutMs, idleMs: this.limits.tunnelIdleMs, sockets: this.sockets },
      pages: this.pages,
      metrics: this.metrics,
      hooks: withDefaultHooks(options.hooks),
      logger: options.logger,
      accessLog: options.accessLog === true,
    });
    // A tunnel or upgraded connection is busy until it closes.
    this.server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      admission.tunnelStarted(req.socket);
      this.onConnect(req, socket, head);
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      admission.tunnelStarted(req.socket);
      this.onUpgrade(req, socket, head, null);
    });
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(error, socket));
    this.server.on('connection', (socket: Socket) => this.admitConnection(socket));
  }

  /**
   * Every client connection, on the proxy port or a transparent one, goes through the
   * one admission policy (admission.ts) and is counted; false when it was refused.
   */
  admitConnection(socket: Socket): boolean {
    if (!this.admission.admit(socket)) return false;
    this.metrics.openConnections++;
    this.sockets.add(socket);
    socket.once('close', () => {
      this.metrics.openConnections--;
      this.sockets.delete(socket);
    });
    return true;
  }

  get policy(): Policy {
    return this.policyNow;
  }

  /** Swaps in a freshly loaded policy; requests in flight finish under the old one. */
  setPolicy(policy: Policy): void {
    // First: should it throw, the authenticator and the policy still belong together.
    preparePageScan(policy);
    this.authenticator = makeAuthenticator(policy);
    this.policyNow = policy;
  }

  /**
   * Swaps in a new school CA (or none): connections from now on get certificates from
   * it; what devices showed about trusting the old one is forgotten.
   */
  setCa(ca: CertificateAuthority | null): void {
    this.ca = ca;
    this.deviceTrust.setCa(ca?.fingerprint256 ?? null);
  }

  get certificateAuthority(): CertificateAuthority | null {
    return this.ca;
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      // A long accept queue (the kernel caps it at net.core.somaxconn): a burst of devices at
      // the start of a lesson is accepted and admitted here, not dropped while Node catches up.
      this.server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
        this.server.off('error', reject);
        const address = this.server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : port);
      });
    });
  }

  /** Stops accepting, lets requests in flight finish, then closes what is left, the upstream clients last. */
  async close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const timer = setTimeout(() => {
      for (const socket of this.sockets) socket.destroy();
    }, graceMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
    this.interceptor.close();
    await this.upstream.close();
  }

  /**
   * Transparent HTTP (transparent.ts): a request redirected here in origin form. `Host`
   * is all there is to go by; it decides and is where the request goes, like an
   * absolute target.
   */
  handleTransparentRequest(req: IncomingMessage, res: ServerResponse): void {
    this.admission.requestStarted(req.socket, res);
    const authority = req.headers.host;
    if (authority === undefined || !(req.url ?? '').startsWith('/')) return sendAnswer(res, BAD_REQUEST);
    this.takeRequest('transparent-http', req, res, parseOriginFormTarget('http', authority, req.url ?? ''), null);
  }

  /**
   * Transparent HTTPS (transparent.ts): a TLS connection whose ClientHello named
   * `target`; busy until it closes, and there is no CONNECT to answer.
   */
  handleTransparentTunnel(socket: Socket, target: Target, head: Buffer): void {
    this.admission.tunnelStarted(socket);
    const address = socket.remoteAddress ?? '';
    const flow: Flow = {
      mode: 'transparent-https',
      target,
      client: { address, profile: this.policyNow.profileForAddress(address) },
      method: 'CONNECT',
      time: Date.now(),
    };
    void this.pipeline.tunnel(flow, socket, head, false);
  }

  /** Counted always; logged once a minute per client and reason, so a flood of connections is not a flood of log lines. */
  private onConnectionLimit(hit: LimitHit): void {
    const client = this.options.clientName(hit.client);
    this.metrics.connectionLimit(client, hit.reason, hit.outcome);
    const key = `${hit.reason} ${client}`;
    const now = Date.now();
    if ((this.limitLogged.get(key) ?? 0) > now - 60_000) return;
    if (this.limitLogged.size >= 1024) this.limitLogged.clear();
    this.limitLogged.set(key, now);
    const limit = hit.reason === 'per-client' ? this.limits.maxClientConnections : this.limits.maxConnections;
    this.options.logger.warn({ client, reason: hit.reason, outcome: hit.outcome, connections: hit.connections, limit }, 'client connection limit reached');
  }

  /** Who sent a request on the proxy port: the lab login it carries, or its address's profile. */
  private identify(req: IncomingMessage): FlowClient | 'auth-failed' {
    const policy = this.policyNow;
    const address = req.socket.remoteAddress ?? '';
    if (this.authenticator !== null) {
      const result = this.authenticator.check(req.headers['proxy-authorization']);
      if (result === 'invalid') return 'auth-failed';
      if (result !== 'absent') {
        const profile = policy.proxyAuth.profiles.get(result.user);
        if (profile !== undefined) return { address, profile };
      }
    }
    return { address, profile: policy.profileForAddress(address) };
  }

  /** The proxy port: absolute form is forwarded, origin form is addressed to the gateway itself. */
  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (lacksHost(req)) return sendAnswer(res, BAD_REQUEST, { connection: 'close' });
    const url = req.url ?? '';
    if (url.charCodeAt(0) === 0x2f /* / */) return this.pages.answerOriginForm(req, res);
    this.takeRequest('forward', req, res, parseAbsoluteTarget(url), null);
  }

  /** A request inside an intercepted tunnel to `authority`: who sent it was settled at the tunnel. */
  private onInterceptedRequest(req: IncomingMessage, res: ServerResponse, client: TunnelClient, authority: string): void {
    if (lacksHost(req)) return sendAnswer(res, BAD_REQUEST, { connection: 'close' });
    this.takeRequest('intercepted', req, res, parseOriginFormTarget('https', authority, req.url ?? ''), client);
  }

  private takeRequest(mode: FlowMode, req: IncomingMessage, res: ServerResponse, target: Target | null, tunnel: TunnelClient | null): void {
    // A double, not a BigInt: nothing allocated per request for the latency histogram.
    const started = performance.now();
    this.metrics.requests++;
    if (target === null) return sendAnswer(res, BAD_REQUEST);
    const client = tunnel === null ? this.identify(req) : { address: tunnel.clientAddress, profile: tunnel.profile };
    if (client === 'auth-failed') return sendAnswer(res, AUTH_REQUIRED);
    const flow: Flow = { mode, target, client, method: req.method ?? 'GET', time: Date.now() };
    this.pipeline.request(flow, req, res, tunnel !== null, started);
  }

  private onConnect(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.metrics.connects++;
    socket.on('error', () => socket.destroy());
    const target = parseConnectTarget(req.url ?? '');
    if (target === null) return writeRawAnswer(socket, BAD_REQUEST);
    const client = this.identify(req);
    if (client === 'auth-failed') return writeRawAnswer(socket, AUTH_REQUIRED);
    void this.pipeline.tunnel({ mode: 'connect', target, client, method: 'CONNECT', time: Date.now() }, socket, head, true);
  }

  /**
   * WebSocket and other upgrades, on the proxy port in absolute form, or (`tunnel`
   * set) a secure WebSocket inside an intercepted tunnel to `tunnel.authority`.
   */
  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, tunnel: { client: TunnelClient; authority: string } | null): void {
    socket.on('error', () => socket.destroy());
    const target = tunnel === null ? parseAbsoluteTarget(req.url ?? '') : parseOriginFormTarget('https', tunnel.authority, req.url ?? '');
    if (target === null) return writeRawAnswer(socket, BAD_REQUEST);
    const client = tunnel === null ? this.identify(req) : { address: tunnel.client.clientAddress, profile: tunnel.client.profile };
    if (client === 'auth-failed') return writeRawAnswer(socket, AUTH_REQUIRED);
    void this.pipeline.upgrade({ mode: 'upgrade', target, client, method: req.method ?? 'GET', time: Date.now() }, req, socket, head);
  }

  /**
   * A request Node's parser refused: in its head, or in its body once the request was
   * already taken (an unknown transfer coding, a bare LF or an overflowing chunk size).
   * It gets the 400 page unless a response has begun on the wire; a response still
   * being prepared loses its socket and is never sent.
   */
  private onClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
    // Node's own fallback makes the same test (its internal `_headerSent`: bytes of the response written).
    const inFlight = (socket as Socket & { _httpMessage?: { _headerSent?: boolean } | null })._httpMessage;
    if (!socket.writable || inFlight?._headerSent === true) {
      socket.destroy();
      return;
    }
    const kind: ErrorKind = error.code === 'HPE_HEADER_OVERFLOW' ? 'headers-too-large' : 'bad-request';
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT' || error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    writeRawAnswer(socket, errorAnswer(kind, null));
  }
}

function makeAuthenticator(policy: Policy): ProxyAuthenticator | null {
  return policy.proxyAuth.usersFile === null ? null : new ProxyAuthenticator(policy.proxyAuth.usersFile);
}

/** HTTP/1.1 requires Host; HTTP/1.0 has none to give. */
function lacksHost(req: IncomingMessage): boolean {
  return req.headers.host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor === 1;
}
