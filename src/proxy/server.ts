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
import { Interceptor, type TunnelClient } from './intercept.js';
import type { CertificateAuthority } from '../tls/index.js';

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
  readonly maxConnections: number;
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
};

export interface ProxyOptions {
  readonly policy: Policy;
  readonly resolver: Resolver;
  readonly eventLog: GatewayEventLog | null;
  readonly logger: Logger;
  readonly limits?: Partial<ProxyLimits>;
  readonly accessLog?: boolean;
  /** The school CA: blocked CONNECTs get the block page over TLS, inspected profiles are intercepted. */
  readonly ca?: CertificateAuthority | null;
  /** Host and port devices should use, for the PAC file. */
  readonly advertisedProxy: () => string;
  /** Called when a review request or report was stored (the shipper sends it now rather than at its next tick). */
  readonly onStudentRequest?: () => void;
}

const HTML = 'text/html; charset=utf-8';
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
  private readonly interceptor: Interceptor | null;
  private readonly studentRequests: StudentRequests;
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
    this.studentRequests = new StudentRequests({ eventLog: options.eventLog, onRecorded: options.onStudentRequest });
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
    this.server = createServer(
      {
        maxHeaderSize: this.limits.maxHeaderBytes, headersTimeout: this.limits.headersTimeoutMs, requestTimeout: 0, keepAliveTimeout: this.limits.clientIdleMs, noDelay: true,
        // Node checks header deadlines on this tick (default 30 s): a slow client would otherwise get up to twice headersTimeout.
        connectionsCheckingInterval: 2_000,
      },
      (req, res) => this.onRequest(req, res),
    );
    this.server.maxConnections = this.limits.maxConnections;
    this.interceptor = options.ca == null ? null : new Interceptor(
            options.ca,
            (req, res, client) => this.onRequest(req, res, client),
            this.limits,
            (req, socket, head, client) => void this.onUpgrade(req, socket, head, client),
          );
    this.server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.onConnect(req, socket, head));
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.onUpgrade(req, socket, head));
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(error, socket));
    this.server.on('connection', (socket: Socket) => {
      this.metrics.openConnections++;
      this.sockets.add(socket);
      socket.once('close', () => {
        this.metrics.openConnections--;
        this.sockets.delete(socket);
      });
    });
  }

  get policy(): Policy {
    return this.policyNow;
  }

  /** Swaps in a freshly loaded policy; requests in flight finish under the old one. */
  setPolicy(policy: Policy): void {
    this.authenticator = makeAuthenticator(policy);
    this.policyNow = policy;
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
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
    this.interceptor?.close();
    this.origins.close();
    await this.agent.close().catch(() => undefined);
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
    // The gateway's own forms, on whatever site the block page was shown for: never
    // forwarded. A browser set to use the proxy for every address sends even the
    // gateway's own report page (http://GATEWAY:3128/lachan/report) in absolute form.
    const formKind = url.pathname.startsWith('/__lachan__/')
      ? studentRequestKind(url.pathname, false)
      : url.pathname.startsWith('/lachan/') && addressedToProxy(url, req.socket.localAddress, req.socket.localPort)
        ? studentRequestKind(url.pathname, true)
        : null;
    if (formKind !== null) return void this.studentRequests.serve(req, res, formKind, profile, clientAddress, url.pathname);

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
    return blockPage({ host, category: decision.category, profileId: decision.profile, profileName: profile?.name ?? decision.profile, reference });
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
    const decision = policy.decideConnect(profile, parsed.host, parsed.port);
    const interceptor = this.interceptor;
    if (interceptor !== null && decision.reason !== 'port' && !policy.isNoInspect(parsed.host)) {
      // With the school CA, a blocked site gets the readable block page (decided and
      // recorded per request inside), and inspected profiles have their HTTPS decided
      // URL by URL.
      if (decision.action === 'block' || policy.profile(profile)?.inspect === true) {
        return interceptor.intercept(client, parsed.host, parsed.port, head, who, announce);
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

  private onClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
    if (!socket.writable || (socket as Socket & { _httpMessage?: unknown })._httpMessage) {
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
  400: 'Bad Request', 403: 'Forbidden', 407: 'Proxy Authentication Required', 431: 'Request Header Fields Too Large', 502: 'Bad Gateway', 504: 'Gateway Timeout',
};

export function classifyUpstreamError(error: unknown): ErrorKind {
  if (error instanceof ResolveError) return error.code === 'LACHAN_FORBIDDEN_DESTINATION' ? 'forbidden-destination' : 'dns';
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (error instanceof OriginError) return error.isTimeout ? 'timeout' : 'connect';
  if (error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.ConnectTimeoutError || error instanceof undiciErrors.BodyTimeoutError || code === 'ETIMEDOUT') return 'timeout';
  if (code === 'LACHAN_FORBIDDEN_DESTINATION') return 'forbidden-destination';
  if (code === 'LACHAN_DNS_FAILED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns';
  if (code === 'CERT_HAS_EXPIRED' || code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'SELF_SIGNED_CERT_IN_CHAIN' || code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'upstream-certificate';
  return 'connect';
}

/** Whether an absolute-form target names this proxy's own listening address and port. */
function addressedToProxy(url: URL, localAddress: string | undefined, localPort: number | undefined): boolean {
  if (localAddress === undefined || String(localPort) !== (url.port || (url.protocol === 'https:' ? '443' : '80'))) return false;
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const local = localAddress.startsWith('::ffff:') ? localAddress.slice(7) : localAddress;
  return host === local || host === localAddress;
}
