import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Duplex } from 'node:stream';
import { Agent, buildConnector, errors as undiciErrors, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { Policy } from '../policy/engine.js';
import type { Decision } from '../policy/types.js';
import { safeSearchEndpoint, rewriteForSafeSearch } from '../policy/safesearch.js';
import { isIpLiteral } from '../policy/hostname.js';
import { organisationOf } from '../rules/loader.js';
import type { GatewayEventLog } from '../events/log.js';
import { ProxyAuthenticator } from './auth.js';
import { rawRequestHasBody, setRawHeader, upstreamRequestHeaders, upstreamRequestRawHeaders } from './headers.js';
import { ForwardHandler, type ForwardEvents } from './forward.js';
import { OriginClient, OriginError, requestHead } from './origin-client.js';
import { ProxyMetrics } from './metrics.js';
import { blockPage, errorPage, errorStatus, type ErrorKind } from './pages.js';
import { StudentRequests, studentRequestKind } from './student-requests.js';
import { pacFile } from './pac.js';
import { ResolveError, type Resolver } from './resolver.js';
import { ConnectionAdmission, type LimitHit } from './admission.js';
import { sameAddress } from './addresses.js';
import { Interceptor, type TunnelClient } from './intercept.js';
import type { CertificateAuthority } from '../tls/index.js';
import { DeviceTrust } from './device-trust.js';
import { CA_DER_PATH, CA_GUIDE_PATH, CA_PEM_PATH, TRUST_PROBE_HOST } from './trust-probe.js';
import { GATEWAY_CA_LINKS, gatewayCaResource, serveCaResource, type CaResource } from './ca-guide.js';

export interface ProxyLimits {
  /** Largest request head accepted (431 beyond). */
  readonly maxHeaderBytes: number;
  /** Time a client has to send its request head: slow clients cannot pin sockets. */
  readonly headersTimeoutMs: number;
  /** Idle client keep-alive connections are closed after this. */
  readonly clientIdleMs: number;
  /** Tunnels and upgraded connections with no traffic either way are closed after this. */
  readonly tunnelIdleMs: number;
  readonly upstreamConnectTimeoutMs: number;
  /** Time the origin has to answer with headers (504 beyond). */
  readonly upstreamHeadersTimeoutMs: number;
  readonly upstreamBodyIdleMs: number;
  readonly upstreamConnectionsPerOrigin: number;
  /** Client connections one worker holds. */
  readonly maxConnections: number;
  /** Client connections one client address holds (see admission.ts). */
  readonly maxClientConnections: number;
}

export const DEFAULT_LIMITS: ProxyLimits = {
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 15_000,
  clientIdleMs: 30_000,
  tunnelIdleMs: 10 * 60_000,
  upstreamConnectTimeoutMs: 10_000,
  upstreamHeadersTimeoutMs: 30_000,
  upstreamBodyIdleMs: 60_000,
  upstreamConnectionsPerOrigin: 64,
  maxConnections: 8192,
  // A lab of 40 computers behind one NAT address, browsers keeping ~10 connections each, fits.
  maxClientConnections: 512,
};

export interface ProxyOptions {
  readonly policy: Policy;
  readonly resolver: Resolver;
  readonly eventLog: GatewayEventLog | null;
  readonly logger: Logger;
  readonly limits?: Partial<ProxyLimits>;
  readonly accessLog?: boolean;
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
  /** The name a client is logged and counted under: its pseudonymous device id, as in events (addresses are not kept). */
  readonly clientName: (address: string) => string;
}

const HTML = 'text/html; charset=utf-8';
const LISTEN_BACKLOG = 4096;
/** Idle keep-alive connections to origins are closed after this (origins commonly close theirs after 5 s). */
const UPSTREAM_IDLE_MS = 4_000;
/** Largest response head taken from an origin (large cookie and policy headers exist; 16 KiB is Node's request limit). */
const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;

/** undici's Request reads `servername` from the dispatch options, though its types omit it. */
type DispatchWithServerName = Dispatcher.DispatchOptions & { servername?: string };
/** A Host header safe to write into the PAC script: a name or address and a port. */
const HOST_HEADER = /^[A-Za-z0-9.:[\]-]+$/;

/**
 * The forward proxy: absolute-form HTTP forwarded over pooled keep-alive upstream
 * connections (undici), CONNECT tunnels spliced both ways, WebSocket upgrades
 * spliced after the decision. Every request is decided on the host of its target,
 * which is also where it goes.
 */
export class ProxyServer {
  readonly server: Server;
  readonly metrics = new ProxyMetrics();
  private policyNow: Policy;
  private authenticator: ProxyAuthenticator | null;
  private readonly agent: Agent;
  /** Bodiless GET and HEAD to `http:` origins: nearly all plain-HTTP traffic (see origin-client.ts). */
  private readonly origins: OriginClient;
  private readonly limits: ProxyLimits;
  private readonly sockets = new Set<Socket | Duplex>();
  private readonly interceptor: Interceptor;
  private ca: CertificateAuthority | null;
  readonly deviceTrust: DeviceTrust;
  private readonly studentRequests: StudentRequests;
  private readonly admission: ConnectionAdmission;
  /** When each client was last logged as limited: one line a minute per client, not one per refusal. */
  private readonly limitLogged = new Map<string, number>();
  /** One object for every forwarded request (see ForwardHandler). */
  private readonly forwardEvents: ForwardEvents = {
    onResponseStart: (startedMs) => this.metrics.observeLatency((performance.now() - startedMs) / 1000),
    onUpstreamError: (error, res, host) => {
      if (res.headersSent) {
        this.metrics.upstreamError(classifyUpstreamError(error));
        res.destroy();
      } else this.failUpstream(res, error, host);
    },
    onFinished: (res, host, profile) => {
      if (this.options.accessLog) this.options.logger.info({ method: res.req.method, host, status: res.statusCode, profile }, 'request');
    },
  };

  /** The options without the first policy: kept here, it would stay in memory beside every later one. */
  private readonly options: Omit<ProxyOptions, 'policy'>;

  constructor({ policy, ...options }: ProxyOptions) {
    this.options = options;
    this.studentRequests = new StudentRequests({ eventLog: options.eventLog, onRecorded: options.onStudentRequest, organisation: () => organisationOf(this.policyNow) });
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.policyNow = policy;
    this.authenticator = makeAuthenticator(policy);
    const resolver = options.resolver;
    const connector = buildConnector({ timeout: this.limits.upstreamConnectTimeoutMs });
    this.agent = new Agent({
      // Resolve and vet in one place, then dial the vetted address: no second lookup.
      connect: (connectOptions, callback) => {
        resolver.resolve(connectOptions.hostname).then(
          (destination) => connector({ ...connectOptions, hostname: destination.address, servername: connectOptions.servername ?? bareHost(connectOptions.hostname) }, callback),
          (error: Error) => callback(error, null),
        );
      },
      connections: this.limits.upstreamConnectionsPerOrigin,
      headersTimeout: this.limits.upstreamHeadersTimeoutMs,
      bodyTimeout: this.limits.upstreamBodyIdleMs,
      keepAliveTimeout: UPSTREAM_IDLE_MS,
    });
    this.origins = new OriginClient({
      resolve: (hostname) => resolver.resolve(hostname).then((destination) => destination.address),
      connectTimeoutMs: this.limits.upstreamConnectTimeoutMs,
      headersTimeoutMs: this.limits.upstreamHeadersTimeoutMs,
      bodyIdleMs: this.limits.upstreamBodyIdleMs,
      connectionsPerOrigin: this.limits.upstreamConnectionsPerOrigin,
      idleMs: UPSTREAM_IDLE_MS,
      maxHeadBytes: MAX_RESPONSE_HEAD_BYTES,
    });
    this.admission = new ConnectionAdmission(this.limits, {
      onLimit: (hit) => this.onConnectionLimit(hit),
    });
    this.metrics.largestClient = () => this.admission.largestClient();
    const admission = this.admission;
    this.server = createServer(
      {
        maxHeaderSize: this.limits.maxHeaderBytes, headersTimeout: this.limits.headersTimeoutMs, requestTimeout: 0, keepAliveTimeout: this.limits.clientIdleMs, noDelay: true,
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
    this.ca = options.ca ?? null;
    this.deviceTrust = options.deviceTrust ?? new DeviceTrust();
    this.deviceTrust.setCa(this.ca?.fingerprint256 ?? null);
    this.interceptor = new Interceptor(
      (req, res, client) => this.onRequest(req, res, client),
      this.limits,
      (req, socket, head, client) => void this.onUpgrade(req, socket, head, client),
    );
    // A tunnel or upgraded connection is busy until it closes.
    this.server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      admission.tunnelStarted(req.socket);
      void this.onConnect(req, socket, head);
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      admission.tunnelStarted(req.socket);
      void this.onUpgrade(req, socket, head);
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

  /** A transparent HTTPS connection became a tunnel: busy until it closes. */
  tunnelStarted(socket: Socket): void {
    this.admission.tunnelStarted(socket);
  }

  get policy(): Policy {
    return this.policyNow;
  }

  /** Swaps in a freshly loaded policy; requests in flight finish under the old one. */
  setPolicy(policy: Policy): void {
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

  /** Stops accepting, lets requests in flight finish, then closes what is left. */
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
    this.origins.close();
    await this.agent.close().catch(() => undefined);
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

  private profileFor(req: IncomingMessage): string | 'auth-failed' {
    const policy = this.policyNow;
    if (this.authenticator !== null) {
      const result = this.authenticator.check(req.headers['proxy-authorization']);
      if (result === 'invalid') return 'auth-failed';
      if (result !== 'absent') {
        const profile = policy.proxyAuth.profiles.get(result.user);
        if (profile !== undefined) return profile;
      }
    }
    return policy.profileForAddress(req.socket.remoteAddress ?? '');
  }

  /** `tunnel` is set for requests inside an intercepted CONNECT: who sent them was settled there. */
  private onRequest(req: IncomingMessage, res: ServerResponse, tunnel?: TunnelClient): void {
    const target = req.url ?? '';
    if (req.headers.host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor === 1) return this.sendError(res, 'bad-request', null, { connection: 'close' });
    if (target.charCodeAt(0) === 0x2f /* / */) return this.onOriginForm(req, res);
    // A double, not a BigInt: nothing allocated per request for the latency histogram.
    const started = performance.now();
    this.metrics.requests++;
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return this.sendError(res, 'bad-request', null);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') return this.sendError(res, 'bad-request', null);
    const profile = tunnel?.profile ?? this.profileFor(req);
    if (profile === 'auth-failed') return this.sendAuthRequired(res);
    const clientAddress = tunnel?.clientAddress ?? req.socket.remoteAddress ?? '';
    // The gateway's own pages and forms, on whatever site the block page was shown
    // for: never forwarded. A browser set to use the proxy for every address sends even
    // the gateway's own pages (http://GATEWAY:3128/lachan/report, /ca) in absolute form.
    const pathname = url.pathname;
    if (url.hostname === TRUST_PROBE_HOST) return this.answerProbe(req, res, tunnel);
    const onAnyHost = pathname.startsWith('/__lachan__/');
    const onGateway = !onAnyHost && (pathname.startsWith('/lachan/') || pathname.startsWith('/ca')) && addressedToProxy(url, req.socket.localAddress, req.socket.localPort);
    if (onAnyHost || onGateway) {
      const caResource = onAnyHost ? anyHostCaResource(pathname) : gatewayCaResource(pathname);
      if (caResource !== null) {
        const links = onAnyHost ? { der: CA_DER_PATH, pem: CA_PEM_PATH } : GATEWAY_CA_LINKS;
        return serveCaResource(req, res, caResource, this.ca, links, `http://${onGateway ? url.host : this.options.advertisedProxy()}`);
      }
      const formKind = studentRequestKind(pathname, onGateway);
      if (formKind !== null) return void this.studentRequests.serve(req, res, formKind, profile, clientAddress, pathname);
    }

    const policy = this.policyNow;
    const pathAndQuery = `${url.pathname}${url.search}`;
    // `example.com.` names `example.com`: events and pages carry one spelling.
    const hostname = url.hostname;
    const host = hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
    const decision = policy.decide(profile, host, pathAndQuery);
    if (decision.action === 'block') return this.sendBlock(req, res, decision, host, url.pathname, clientAddress);

    let path = pathAndQuery;
    const headers = upstreamRequestRawHeaders(req.rawHeaders, url.host);
    const safe = policy.profile(profile)?.safeSearch;
    if (safe !== undefined) {
      const rewrite = rewriteForSafeSearch(host, pathAndQuery, safe);
      if (rewrite !== null) {
        path = rewrite.pathAndQuery;
        for (const [name, value] of rewrite.headers) setRawHeader(headers, name, value);
      }
    }
    const hasBody = rawRequestHasBody(req.rawHeaders);
    const handler = new ForwardHandler(res, this.forwardEvents, host, profile, started);
    const method = req.method;
    if (!hasBody && (method === 'GET' || method === 'HEAD') && url.protocol === 'http:') {
      const port = url.port === '' ? 80 : Number(url.port);
      this.origins.request({ hostname: url.hostname, port, head: requestHead(method, path, headers), isHead: method === 'HEAD' }, handler);
      return;
    }
    const dispatch: DispatchWithServerName = {
      origin: url.origin, path, method: method as 'GET', headers, body: hasBody ? req : null,
      // Given here so that undici does not work it out per request (a regular expression
      // for IPv6); SNI carries names only, so an address leaves it to undici.
      servername: isIpLiteral(host) ? undefined : host,
    };
    this.agent.dispatch(dispatch, handler as unknown as Dispatcher.DispatchHandler);
  }

  /** Requests to the proxy itself: auto-configuration only. Nothing else of the gateway is reachable here. */
  private onOriginForm(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '').split('?', 1)[0];
    if ((path === '/proxy.pac' || path === '/wpad.dat') && (req.method === 'GET' || req.method === 'HEAD')) {
      // The device fetched this file from the proxy itself: the address it used is the one to name.
      const asked = req.headers.host;
      const body = pacFile(asked !== undefined && HOST_HEADER.test(asked) ? asked : this.options.advertisedProxy());
      res.writeHead(200, { 'content-type': 'application/x-ns-proxy-autoconfig', 'content-length': Buffer.byteLength(body), 'cache-control': 'max-age=300' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const caResource = gatewayCaResource(path);
    if (caResource !== null) {
      const asked = req.headers.host;
      return serveCaResource(req, res, caResource, this.ca, GATEWAY_CA_LINKS, `http://${asked !== undefined && HOST_HEADER.test(asked) ? asked : this.options.advertisedProxy()}`);
    }
    // The review and report forms, posted to (or opened on) the proxy itself: a block
    // page saved or opened outside the proxied session, or a device pointed at the gateway.
    const formKind = studentRequestKind(path, true);
    if (formKind !== null) {
      const address = req.socket.remoteAddress ?? '';
      void this.studentRequests.serve(req, res, formKind, this.policyNow.profileForAddress(address), address, path);
      return;
    }
    this.sendError(res, 'bad-request', null);
  }

  private recordBlock(decision: Decision, host: string, path: string, method: string, clientAddress: string): string {
    this.metrics.block(decision.category, decision.profile);
    if (this.options.eventLog === null) return '-';
    return this.options.eventLog.record({
      time: Date.now(), profile: decision.profile, category: decision.category, reason: decision.reason,
      rule: decision.rule, source: decision.source, host, path, method, clientAddress,
    });
  }

  private blockPageFor(decision: Decision, host: string, reference: string): string {
    const profile = this.policyNow.profile(decision.profile);
    return blockPage({ host, category: decision.category, profileId: decision.profile, profileName: profile?.name ?? decision.profile, reference, reason: decision.reason, organisation: organisationOf(this.policyNow) });
  }

  private sendBlock(req: IncomingMessage, res: ServerResponse, decision: Decision, host: string, path: string, clientAddress: string): void {
    const reference = this.recordBlock(decision, host, path, req.method ?? 'GET', clientAddress);
    const page = this.blockPageFor(decision, host, reference);
    res.writeHead(403, {
      'content-type': HTML, 'content-length': Buffer.byteLength(page), 'cache-control': 'no-store',
      'x-lachan-block': decision.category ?? decision.reason, via: '1.1 lachan',
    });
    res.end(page);
    // The client's request body, if any, is not wanted.
    req.resume();
  }

  private sendError(res: ServerResponse, kind: ErrorKind, host: string | null, extra: Record<string, string> = {}): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const page = errorPage(kind, host);
    res.writeHead(errorStatus(kind), { 'content-type': HTML, 'content-length': Buffer.byteLength(page), 'cache-control': 'no-store', ...extra });
    res.end(page);
  }

  private sendAuthRequired(res: ServerResponse): void {
    const page = errorPage('auth-required', null);
    res.writeHead(407, { 'content-type': HTML, 'content-length': Buffer.byteLength(page), 'proxy-authenticate': 'Basic realm="lachan", charset="UTF-8"' });
    res.end(page);
  }

  private failUpstream(res: ServerResponse, error: unknown, host: string): void {
    const kind = classifyUpstreamError(error);
    this.metrics.upstreamError(kind);
    if (kind !== 'forbidden-destination') this.options.logger.debug({ host, err: (error as Error).message }, 'upstream failure');
    this.sendError(res, kind, host);
  }

  private async onConnect(req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    this.metrics.connects++;
    client.on('error', () => client.destroy());
    const authority = req.url ?? '';
    const parsed = parseAuthority(authority);
    if (parsed === null) return rawReply(client, 400, errorPage('bad-request', null));
    const profile = this.profileFor(req);
    if (profile === 'auth-failed') return rawReply(client, 407, errorPage('auth-required', null), { 'Proxy-Authenticate': 'Basic realm="lachan", charset="UTF-8"' });
    return this.openTunnel(client, parsed.host, parsed.port, head, { clientAddress: req.socket.remoteAddress ?? '', profile }, true);
  }

  /**
   * Transparent HTTP: a request redirected here in origin form. `Host` is all there
   * is to go by; it decides and is where the request goes, like an absolute target.
   */
  handleTransparentRequest(req: IncomingMessage, res: ServerResponse): void {
    this.admission.requestStarted(req.socket, res);
    const authority = req.headers.host;
    if (authority === undefined || !(req.url ?? '').startsWith('/')) return this.sendError(res, 'bad-request', null);
    req.url = `http://${authority}${req.url}`;
    this.onRequest(req, res);
  }

  /**
   * A tunnel to `host:port`: from a CONNECT (`announce`: answer it with 200) or from
   * transparent HTTPS, whose ClientHello named the host (nothing to answer). Decided
   * on host and port, then intercepted, refused or spliced to the address the proxy
   * resolves itself.
   */
  async openTunnel(client: Duplex, host: string, port: number, head: Buffer, who: TunnelClient, announce: boolean): Promise<void> {
    const parsed = { host, port };
    const profile = who.profile;
    const policy = this.policyNow;
    const ca = this.ca;
    if (parsed.host === TRUST_PROBE_HOST) return this.openProbeTunnel(ca, client, parsed.port, head, who, announce);
    const decision = policy.decideConnect(profile, parsed.host, parsed.port);
    if (ca !== null && decision.reason !== 'port' && !policy.isNoInspect(parsed.host)) {
      // With the school CA a blocked site gets the block page over TLS (decided and
      // recorded per request inside), as the contract says (docs/contract.md §4), on every
      // device but those of a `never` range: the site stays closed either way, and a
      // device without the CA sees a certificate warning instead of a tunnel error.
      // Allowed sites of inspected profiles are decided URL by URL only on devices that
      // will accept the certificate, so that a device without the CA keeps its sites.
      const intercept = decision.action === 'block'
        ? policy.clientRange(who.clientAddress).intercept !== 'never'
        : policy.profile(profile)?.inspect === true && this.mayIntercept(policy, who.clientAddress);
      if (intercept) {
        return this.interceptor.intercept(ca, client, parsed.host, parsed.port, head, who, announce);
      }
    }
    if (decision.action === 'block') {
      const reference = this.recordBlock(decision, parsed.host, '/', 'CONNECT', who.clientAddress);
      // Without a CONNECT to answer there is no way to show a page: close.
      if (!announce) return void client.destroy();
      if (decision.reason === 'port') return rawReply(client, 403, errorPage('port', parsed.host), { 'X-Lachan-Block': 'port' });
      return rawReply(client, 403, this.blockPageFor(decision, parsed.host, reference), { 'X-Lachan-Block': decision.category ?? decision.reason });
    }
    // Safe search without interception: dial the engine's safe endpoint; the client's TLS stays intact.
    const safe = policy.profile(profile)?.safeSearch;
    const dialHost = (safe !== undefined ? safeSearchEndpoint(parsed.host, safe) : null) ?? parsed.host;
    let address: string;
    try {
      address = (await this.options.resolver.resolve(dialHost)).address;
    } catch (error) {
      const kind = classifyUpstreamError(error);
      this.metrics.upstreamError(kind);
      if (!announce) return void client.destroy();
      return rawReply(client, errorStatus(kind), errorPage(kind, parsed.host));
    }
    const upstream = netConnect({ host: address, port: parsed.port, noDelay: true });
    this.sockets.add(upstream);
    upstream.setTimeout(this.limits.upstreamConnectTimeoutMs, () => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })));
    // Until the tunnel is up, a failure is answered with a page; after, both sides just close.
    let established = false;
    client.once('close', () => {
      if (!established) upstream.destroy();
    });
    upstream.once('connect', () => {
      established = true;
      upstream.setTimeout(this.limits.tunnelIdleMs, () => upstream.destroy());
      if (announce) client.write('HTTP/1.1 200 Connection Established\r\nVia: 1.1 lachan\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      splice(client, upstream);
    });
    upstream.once('error', (error) => {
      if (established) return;
      const kind = classifyUpstreamError(error);
      this.metrics.upstreamError(kind);
      if (announce) rawReply(client, errorStatus(kind), errorPage(kind, parsed.host));
      else client.destroy();
    });
    upstream.once('close', () => {
      this.sockets.delete(upstream);
      if (established) client.destroy();
    });
  }

  /**
   * Whether a device's HTTPS may be intercepted, by its range's `intercept` mode:
   * `learned` (the default) only once the device has shown it trusts the school CA,
   * so that a device without the CA gets its sites (or the plain 403) instead of a
   * certificate warning on every page.
   */
  private mayIntercept(policy: Policy, clientAddress: string): boolean {
    const mode = policy.clientRange(clientAddress).intercept;
    if (mode === 'always') return true;
    if (mode === 'never') return false;
    this.deviceTrust.noteSeen(clientAddress);
    return this.deviceTrust.isTrusted(clientAddress);
  }

  /**
   * The trust probe's tunnel: always intercepted with the school CA, whatever the
   * device's range says, since finding out whether the device accepts the certificate
   * is its whole point. Nothing is ever forwarded for this name.
   */
  private openProbeTunnel(ca: CertificateAuthority | null, client: Duplex, port: number, head: Buffer, who: TunnelClient, announce: boolean): void {
    if (ca === null) {
      if (!announce) return void client.destroy();
      return rawReply(client, 404, '');
    }
    void this.interceptor.intercept(ca, client, TRUST_PROBE_HOST, port, head, who, announce, () => this.deviceTrust.noteProbe(who.clientAddress, false));
  }

  /** A request for the probe: inside an intercepted tunnel it proves the device took the school's certificate. */
  private answerProbe(req: IncomingMessage, res: ServerResponse, tunnel: TunnelClient | undefined): void {
    req.resume();
    if (tunnel === undefined || this.ca === null) {
      res.writeHead(404, { 'content-length': 0, 'cache-control': 'no-store' });
      res.end();
      return;
    }
    this.deviceTrust.noteProbe(tunnel.clientAddress, true);
    // Any page may ask (the guide reads the result); the image is the same for everyone.
    res.writeHead(200, { 'content-type': 'image/gif', 'content-length': PROBE_IMAGE.length, 'cache-control': 'no-store', 'access-control-allow-origin': '*' });
    res.end(req.method === 'HEAD' ? undefined : PROBE_IMAGE);
  }

  /** WebSocket and other upgrades: decided like any request, then spliced raw. */
  /** `tunnel` is set for a secure WebSocket inside an intercepted CONNECT. */
  private async onUpgrade(req: IncomingMessage, client: Duplex, head: Buffer, tunnel?: TunnelClient): Promise<void> {
    client.on('error', () => client.destroy());
    let url: URL;
    try {
      url = new URL(req.url ?? '');
    } catch {
      return rawReply(client, 400, errorPage('bad-request', null));
    }
    const secure = url.protocol === 'https:' || url.protocol === 'wss:';
    if (!secure && url.protocol !== 'http:' && url.protocol !== 'ws:') return rawReply(client, 400, errorPage('bad-request', null));
    const profile = tunnel?.profile ?? this.profileFor(req);
    if (profile === 'auth-failed') return rawReply(client, 407, errorPage('auth-required', null), { 'Proxy-Authenticate': 'Basic realm="lachan", charset="UTF-8"' });
    const decision = this.policyNow.decide(profile, url.hostname, `${url.pathname}${url.search}`);
    if (decision.action === 'block') {
      const reference = this.recordBlock(decision, url.hostname, url.pathname, req.method ?? 'GET', tunnel?.clientAddress ?? req.socket.remoteAddress ?? '');
      return rawReply(client, 403, this.blockPageFor(decision, url.hostname, reference), { 'X-Lachan-Block': decision.category ?? decision.reason });
    }
    let address: string;
    try {
      address = (await this.options.resolver.resolve(url.hostname)).address;
    } catch (error) {
      const kind = classifyUpstreamError(error);
      return rawReply(client, errorStatus(kind), errorPage(kind, url.hostname));
    }
    // A secure WebSocket goes on over TLS verified against the system store, as intercepted requests do.
    const upstream = secure
      ? tlsConnect({ host: address, port: Number(url.port || 443), servername: bareHost(url.hostname), ALPNProtocols: ['http/1.1'] })
      : netConnect({ host: address, port: Number(url.port || 80) });
    const headers = upstreamRequestHeaders(req.headers, url.host);
    // Upgrade is hop-by-hop, but it is exactly what is being forwarded here.
    headers.connection = 'Upgrade';
    if (req.headers.upgrade !== undefined) headers.upgrade = req.headers.upgrade;
    this.sockets.add(upstream);
    let established = false;
    client.once('close', () => {
      if (!established) upstream.destroy();
    });
    upstream.setTimeout(this.limits.upstreamConnectTimeoutMs, () => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })));
    upstream.once(secure ? 'secureConnect' : 'connect', () => {
      established = true;
      let head_ = `${req.method} ${url.pathname}${url.search} HTTP/1.1\r\n`;
      for (const [name, value] of Object.entries(headers)) for (const v of Array.isArray(value) ? value : [value]) head_ += `${name}: ${v}\r\n`;
      upstream.write(`${head_}\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.setTimeout(this.limits.tunnelIdleMs, () => upstream.destroy());
      splice(client, upstream);
    });
    upstream.once('error', (error) => {
      if (established) return;
      const kind = classifyUpstreamError(error);
      this.metrics.upstreamError(kind);
      rawReply(client, errorStatus(kind), errorPage(kind, url.hostname));
    });
    upstream.once('close', () => {
      this.sockets.delete(upstream);
      if (established) client.destroy();
    });
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
    rawReply(socket, errorStatus(kind), errorPage(kind, null));
  }
}

function makeAuthenticator(policy: Policy): ProxyAuthenticator | null {
  return policy.proxyAuth.usersFile === null ? null : new ProxyAuthenticator(policy.proxyAuth.usersFile);
}

function bareHost(host: string): string {
  return host.startsWith('[') ? host.slice(1, -1) : host;
}

/** `host:port` of a CONNECT, canonicalised as a URL host is; null when malformed. */
export function parseAuthority(authority: string): { host: string; port: number } | null {
  if (!/^[^\s/?#@]+:\d{1,5}$/.test(authority)) return null;
  let url: URL;
  try {
    url = new URL(`http://${authority}`);
  } catch {
    return null;
  }
  const port = Number(authority.slice(authority.lastIndexOf(':') + 1));
  if (url.hostname === '' || port < 1 || port > 65535) return null;
  return { host: url.hostname.endsWith('.') ? url.hostname.slice(0, -1) : url.hostname, port };
}

/** Bytes both ways, with back-pressure (pipe pauses the faster side), torn down together. */
function splice(client: Duplex, upstream: Socket): void {
  client.pipe(upstream);
  upstream.pipe(client);
  client.once('close', () => upstream.destroy());
}

/** A complete HTTP/1.1 response written on a raw socket (CONNECT, upgrade, parse errors), then closed. */
function rawReply(socket: Duplex, status: number, html: string, extra: Record<string, string> = {}): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = Buffer.from(html);
  let head = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nContent-Type: ${HTML}\r\nContent-Length: ${body.length}\r\nCache-Control: no-store\r\nConnection: close\r\nVia: 1.1 lachan\r\n`;
  for (const [name, value] of Object.entries(extra)) head += `${name}: ${value}\r\n`;
  socket.end(Buffer.concat([Buffer.from(`${head}\r\n`), body]));
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 407: 'Proxy Authentication Required', 431: 'Request Header Fields Too Large', 502: 'Bad Gateway', 504: 'Gateway Timeout',
};

/** A transparent 1×1 GIF: what the probe answers, so that an <img> fires onload. */
const PROBE_IMAGE = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

/** The install guide and the certificate under `/__lachan__/` on any host. */
function anyHostCaResource(path: string): CaResource | null {
  return path === CA_DER_PATH ? 'der' : path === CA_PEM_PATH ? 'pem' : path === CA_GUIDE_PATH ? 'guide' : null;
}

export function classifyUpstreamError(error: unknown): ErrorKind {
  if (error instanceof ResolveError) return error.code === 'LACHAN_FORBIDDEN_DESTINATION' ? 'forbidden-destination' : 'dns';
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (error instanceof OriginError) return error.isTimeout ? 'timeout' : 'connect';
  if (error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.ConnectTimeoutError || error instanceof undiciErrors.BodyTimeoutError || code === 'ETIMEDOUT') return 'timeout';
  if (code === 'LACHAN_FORBIDDEN_DESTINATION') return 'forbidden-destination';
  if (code === 'LACHAN_DNS_FAILED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns';
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'CERT_HAS_EXPIRED' || code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'SELF_SIGNED_CERT_IN_CHAIN' || code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'upstream-certificate';
  return 'connect';
}

/** Whether an absolute-form target names this proxy's own listening address and port. */
function addressedToProxy(url: URL, localAddress: string | undefined, localPort: number | undefined): boolean {
  if (localAddress === undefined || String(localPort) !== (url.port || (url.protocol === 'https:' ? '443' : '80'))) return false;
  return sameAddress(url.hostname, localAddress);
}
