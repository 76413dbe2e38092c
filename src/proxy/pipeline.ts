import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { ContentVerdict } from '../content/profile.js';
import { queryVerdict, searchQueryOf, searchVerdict } from '../content/search-terms.js';
import type { Policy } from '../policy/engine.js';
import type { Decision } from '../policy/types.js';
import { rewriteForSafeSearch, safeSearchEndpoint } from '../policy/safesearch.js';
import type { CertificateAuthority } from '../tls/index.js';
import type { DeviceTrust } from './device-trust.js';
import type { Flow } from './flow.js';
import { ForwardHandler, type ForwardEvents } from './forward.js';
import type { GatewayPages } from './gateway-pages.js';
import { rawRequestHasBody, setRawHeader, upstreamRequestHeaders, upstreamRequestRawHeaders } from './headers.js';
import type { ProxyHooks, ResponseInspectorFactory, SearchSignalHook } from './hooks.js';
import type { TunnelClient } from './intercept.js';
import type { ProxyMetrics } from './metrics.js';
import { requestHead } from './origin-client.js';
import type { BlockRecord, BlockRecorder } from './ports.js';
import { blockAnswer, contentBlockAnswer, errorAnswer, sendAnswer, tippingPhrase, writeRawAnswer } from './responder.js';
import { TRUST_PROBE_HOST } from './trust-probe.js';
import { bareHost, sniName, type Target } from './target.js';
import { openTunnel, type TunnelDeps } from './tunnel.js';
import { classifyUpstreamError, type Upstream } from './upstream.js';

/** Terminates an allowed or blocked tunnel's TLS with the school CA (intercept.ts). */
export type InterceptTunnel = (
  ca: CertificateAuthority,
  client: Duplex,
  host: string,
  port: number,
  head: Buffer,
  who: TunnelClient,
  announce: boolean,
  onRefused?: () => void,
) => Promise<void>;

export interface PipelineDeps {
  readonly policy: () => Policy;
  readonly ca: () => CertificateAuthority | null;
  readonly deviceTrust: DeviceTrust;
  readonly intercept: InterceptTunnel;
  readonly blocks: BlockRecorder | null;
  readonly upstream: Upstream;
  readonly tunnels: TunnelDeps;
  readonly pages: GatewayPages;
  readonly metrics: ProxyMetrics;
  readonly hooks: ProxyHooks;
  readonly logger: Logger;
  readonly accessLog: boolean;
}

/** undici's Request reads `servername` from the dispatch options, though its types omit it. */
type DispatchWithServerName = Dispatcher.DispatchOptions & { servername?: string };

/**
 * What happens to a flow, whichever way it came in: the gateway's own pages first, then
 * the decision (the `decide` hook, then the safeguarding signal), then the answer (the
 * block page, recorded) or the way on: forwarded, intercepted, tunnelled or upgraded.
 */
export class RequestPipeline {
  /** One object for every forwarded request (see ForwardHandler). */
  private readonly forwardEvents: ForwardEvents;
  /** Null: every body streams untouched (forward.ts); else attached where the handler is built (forwardHandler). */
  private readonly inspectResponse: ResponseInspectorFactory | null;
  /** Null: search terms are read only for profiles that inspect content. */
  private readonly onSearch: SearchSignalHook | null;

  constructor(private readonly deps: PipelineDeps) {
    this.inspectResponse = deps.hooks.inspectResponse;
    this.onSearch = deps.hooks.onSearch;
    const { metrics, logger } = deps;
    this.forwardEvents = {
      onResponseStart: (startedMs) => metrics.observeLatency((performance.now() - startedMs) / 1000),
      onUpstreamError: (error, res, host) => {
        const kind = classifyUpstreamError(error);
        metrics.upstreamError(kind);
        if (res.headersSent) return void res.destroy();
        if (kind !== 'forbidden-destination') logger.debug({ host, err: error.message }, 'upstream failure');
        sendAnswer(res, errorAnswer(kind, host));
      },
      onFinished: (res, host, profile) => {
        if (deps.accessLog) logger.info({ method: res.req.method, host, status: res.statusCode, profile }, 'request');
      },
      onContentBlocked: (verdict, res, flow, policy) => {
        const reference = this.recordContentBlock(flow, verdict);
        deps.hooks.onContentBlock(flow, verdict);
        // Past the held-back prefix the page is under way: it can only be cut.
        if (res.headersSent) res.destroy();
        else sendAnswer(res, contentBlockAnswer(policy, verdict, flow.target.host, reference, false));
      },
    };
  }

  /** A request (forward, transparent HTTP, inside an intercepted tunnel); `startedMs` from performance.now(). */
  request(flow: Flow, req: IncomingMessage, res: ServerResponse, inTunnel: boolean, startedMs: number): void {
    if (this.deps.pages.answerOnSite(flow, req, res, inTunnel)) return;
    const policy = this.deps.policy();
    const decision = this.decide(flow, policy);
    const { target } = flow;
    if (decision.action === 'block') {
      sendAnswer(res, blockAnswer(policy, decision, target.host, this.recordBlock(flow, decision)));
      // The client's request body, if any, is not wanted.
      req.resume();
      return;
    }
    const search = this.searchOf(flow, policy);
    if (search !== null) {
      sendAnswer(res, contentBlockAnswer(policy, search, target.host, this.recordContentBlock(flow, search), true));
      req.resume();
      return;
    }
    let path = target.pathAndQuery;
    const headers = upstreamRequestRawHeaders(req.rawHeaders, target.authority);
    const safe = policy.profile(flow.client.profile)?.safeSearch;
    if (safe !== undefined) {
      const rewrite = rewriteForSafeSearch(target.host, path, safe);
      if (rewrite !== null) {
        path = rewrite.pathAndQuery;
        for (const [name, value] of rewrite.headers) setRawHeader(headers, name, value);
      }
    }
    const hasBody = rawRequestHasBody(req.rawHeaders);
    const handler = this.forwardHandler(flow, policy, res, startedMs);
    const method = flow.method;
    if (!hasBody && (method === 'GET' || method === 'HEAD')) {
      this.deps.upstream.origins.request(
        { hostname: target.host, port: target.port, secure: target.scheme === 'https', head: requestHead(method, path, headers), isHead: method === 'HEAD' },
        handler,
      );
      return;
    }
    const dispatch: DispatchWithServerName = {
      origin: `${target.scheme}://${target.authority}`,
      path,
      method: method as 'GET',
      headers,
      body: hasBody ? req : null,
      // Given here so that undici does not work it out per request (a regular expression
      // for IPv6); an address (no SNI) leaves it to undici.
      servername: sniName(target.host),
    };
    this.deps.upstream.agent.dispatch(dispatch, handler as unknown as Dispatcher.DispatchHandler);
  }

  /**
   * A tunnel: from a CONNECT (`announce`: answer it with 200) or from transparent HTTPS
   * (nothing to answer). Decided on host and port, then intercepted, refused or spliced
   * to the address the proxy resolves itself.
   */
  async tunnel(flow: Flow, client: Duplex, head: Buffer, announce: boolean): Promise<void> {
    const { target } = flow;
    const who: TunnelClient = { clientAddress: flow.client.address, profile: flow.client.profile };
    const ca = this.deps.ca();
    if (target.host === TRUST_PROBE_HOST) return this.probeTunnel(ca, client, target, head, who, announce);
    const policy = this.deps.policy();
    const decision = this.decide(flow, policy);
    if (ca !== null && decision.reason !== 'port' && !policy.isNoInspect(target.host)) {
      // With the school CA a blocked site gets the block page over TLS (decided and
      // recorded per request inside), as the contract says (docs/contract.md §4), on every
      // device but those of a `never` range: the site stays closed either way, and a
      // device without the CA sees a certificate warning instead of a tunnel error.
      // Allowed sites of inspected profiles are decided URL by URL only on devices that
      // will accept the certificate, so that a device without the CA keeps its sites.
      const intercept =
        decision.action === 'block'
          ? policy.clientRange(who.clientAddress).intercept !== 'never'
          : policy.profile(who.profile)?.inspect === true && this.mayIntercept(policy, who.clientAddress);
      if (intercept) return this.deps.intercept(ca, client, target.host, target.port, head, who, announce);
    }
    if (decision.action === 'block') {
      const reference = this.recordBlock(flow, decision);
      // Without a CONNECT to answer there is no way to show a page: close.
      if (!announce) return void client.destroy();
      return writeRawAnswer(client, blockAnswer(policy, decision, target.host, reference));
    }
    // Safe search without interception: dial the engine's safe endpoint; the client's TLS stays intact.
    const safe = policy.profile(who.profile)?.safeSearch;
    const dialHost = (safe !== undefined ? safeSearchEndpoint(target.host, safe) : null) ?? target.host;
    await openTunnel(this.deps.tunnels, client, { host: dialHost, port: target.port }, head, {
      onOpen: () => {
        if (announce) client.write('HTTP/1.1 200 Connection Established\r\nVia: 1.1 lachan\r\n\r\n');
      },
      onFailure: (error) => this.tunnelFailed(client, target, error, announce),
    });
  }

  /** WebSocket and other upgrades: decided like any request, then spliced raw. */
  async upgrade(flow: Flow, req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    const policy = this.deps.policy();
    const decision = this.decide(flow, policy);
    const { target } = flow;
    if (decision.action === 'block') return writeRawAnswer(client, blockAnswer(policy, decision, target.host, this.recordBlock(flow, decision)));
    const headers = upstreamRequestHeaders(req.headers, target.authority);
    // Upgrade is hop-by-hop, but it is exactly what is being forwarded here.
    headers.connection = 'Upgrade';
    if (req.headers.upgrade !== undefined) headers.upgrade = req.headers.upgrade;
    // A secure WebSocket goes on over TLS verified against the system store, as intercepted requests do.
    const servername = target.scheme === 'https' ? bareHost(target.host) : undefined;
    await openTunnel(this.deps.tunnels, client, { host: target.host, port: target.port, servername }, head, {
      onOpen: (upstream) => {
        let requestHead = `${flow.method} ${target.pathAndQuery} HTTP/1.1\r\n`;
        for (const [name, value] of Object.entries(headers)) for (const v of Array.isArray(value) ? value : [value]) requestHead += `${name}: ${v}\r\n`;
        upstream.write(`${requestHead}\r\n`);
      },
      onFailure: (error) => this.tunnelFailed(client, target, error, true),
    });
  }

  /** The verdict on the request's search terms, and their safeguarding signal when a hook wants them. */
  private searchOf(flow: Flow, policy: Policy): ContentVerdict | null {
    const { target, client } = flow;
    const onSearch = this.onSearch;
    if (onSearch === null) return searchVerdict(policy, client.profile, target.host, target.pathAndQuery);
    const query = searchQueryOf(target.host, target.pathAndQuery);
    if (query === null) return null;
    const verdict = queryVerdict(policy, client.profile, query);
    onSearch(flow, query, verdict);
    return verdict;
  }

  /** The decision, and the safeguarding signal of it. */
  private decide(flow: Flow, policy: Policy): Decision {
    const { hooks } = this.deps;
    const decision = hooks.decide({ flow, policy, time: flow.time });
    hooks.onDecision(flow, decision);
    return decision;
  }

  /**
   * A content block, recorded like any other (docs/contract.md §5, §8): reason `content`,
   * the category, and as rule the phrase from the rules that weighs most. A search's
   * query is never recorded: the path is without it, and the phrase is the rule's text.
   */
  private recordContentBlock(flow: Flow, verdict: ContentVerdict): string {
    return this.recordBlock(flow, { profile: verdict.profile, category: verdict.category, reason: 'content', rule: tippingPhrase(verdict), source: null });
  }

  /** Counts and records a block; returns the reference the block page shows. */
  private recordBlock(flow: Flow, decision: Pick<BlockRecord, 'profile' | 'category' | 'reason' | 'rule' | 'source'>): string {
    this.deps.metrics.block(decision.category, decision.profile);
    const blocks = this.deps.blocks;
    if (blocks === null) return '-';
    const { target, client } = flow;
    return blocks.record({
      time: flow.time,
      profile: decision.profile,
      category: decision.category,
      reason: decision.reason,
      rule: decision.rule,
      source: decision.source,
      host: target.host,
      path: target.path,
      method: flow.method,
      clientAddress: client.address,
    });
  }

  /** The handler, with content inspection when the profile has a content_limit (hooks.ts); else the body streams untouched. */
  private forwardHandler(flow: Flow, policy: Policy, res: ServerResponse, startedMs: number): ForwardHandler {
    const inspection = this.inspectResponse?.({ flow, policy }) ?? null;
    return new ForwardHandler(res, this.forwardEvents, flow, startedMs, inspection, inspection === null ? null : policy);
  }

  private tunnelFailed(client: Duplex, target: Target, error: unknown, answer: boolean): void {
    const kind = classifyUpstreamError(error);
    this.deps.metrics.upstreamError(kind);
    if (answer) writeRawAnswer(client, errorAnswer(kind, target.host));
    else client.destroy();
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
    this.deps.deviceTrust.noteSeen(clientAddress);
    return this.deps.deviceTrust.isTrusted(clientAddress);
  }

  /**
   * The trust probe's tunnel: always intercepted with the school CA, whatever the
   * device's range says, since finding out whether the device accepts the certificate
   * is its whole point. Nothing is ever forwarded for this name.
   */
  private probeTunnel(ca: CertificateAuthority | null, client: Duplex, target: Target, head: Buffer, who: TunnelClient, announce: boolean): void {
    if (ca === null) {
      if (!announce) return void client.destroy();
      return writeRawAnswer(client, { status: 404, html: '', headers: {} });
    }
    void this.deps.intercept(ca, client, TRUST_PROBE_HOST, target.port, head, who, announce, () => this.deps.deviceTrust.noteProbe(who.clientAddress, false));
  }
}
