import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Policy } from '../policy/engine.js';
import type { CertificateAuthority } from '../tls/index.js';
import { sameAddress } from './addresses.js';
import { GATEWAY_CA_LINKS, gatewayCaResource, serveCaResource, type CaResource } from './ca-guide.js';
import type { DeviceTrust } from './device-trust.js';
import type { Flow, FlowClient } from './flow.js';
import { pacFile } from './pac.js';
import { errorAnswer, sendAnswer } from './responder.js';
import { studentRequestKind, type StudentRequests } from './student-requests.js';
import { CA_DER_PATH, CA_GUIDE_PATH, CA_PEM_PATH, TRUST_PROBE_HOST } from './trust-probe.js';

/**
 * What the gateway answers itself and never forwards: the PAC file, the school CA and
 * its install guide, the review and report forms, and the trust probe. They are
 * reached on the proxy port in origin form, on the gateway's own address in absolute
 * form, or under `/__lachan__/` on any host (the block page is shown under the blocked
 * site's address, so its form posts there).
 */
export interface GatewayPagesDeps {
  readonly policy: () => Policy;
  readonly ca: () => CertificateAuthority | null;
  readonly deviceTrust: DeviceTrust;
  readonly studentRequests: StudentRequests;
  /** Host and port devices should use, for the PAC file and links. */
  readonly advertisedProxy: () => string;
  /** The teachers' classroom page (src/classroom), at STAFF_PAGE_PATH; null: not served. */
  readonly staffPage: StaffPageHandler | null;
}

/**
 * The classroom staff page (docs/classroom.md): on the proxy port, in origin form or
 * addressed to the gateway through the proxy. Never under another site's name: its
 * session cookie would belong to that site and go to the real one over HTTPS.
 */
export const STAFF_PAGE_PATH = '/__lachan__/lop-hoc';

/** Answers the staff page for a client as the proxy settled it; `action` is where its forms post. */
export interface StaffPageHandler {
  serve(req: IncomingMessage, res: ServerResponse, client: FlowClient, action: string): Promise<void>;
}

/** A Host header safe to write into the PAC script: a name or address and a port. */
const HOST_HEADER = /^[A-Za-z0-9.:[\]-]+$/;

/** A transparent 1×1 GIF: what the probe answers, so that an <img> fires onload. */
const PROBE_IMAGE = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

export class GatewayPages {
  constructor(private readonly deps: GatewayPagesDeps) {}

  /** Requests to the proxy itself (origin form): auto-configuration, the CA and the forms. Nothing else of the gateway is reachable here. */
  answerOriginForm(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '').split('?', 1)[0]!;
    // The device fetched this from the proxy itself: the address it used is the one to name.
    const asked = req.headers.host;
    const gateway = asked !== undefined && HOST_HEADER.test(asked) ? asked : this.deps.advertisedProxy();
    if ((path === '/proxy.pac' || path === '/wpad.dat') && (req.method === 'GET' || req.method === 'HEAD')) {
      const body = pacFile(gateway);
      res.writeHead(200, { 'content-type': 'application/x-ns-proxy-autoconfig', 'content-length': Buffer.byteLength(body), 'cache-control': 'max-age=300' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const caResource = gatewayCaResource(path);
    if (caResource !== null) return serveCaResource(req, res, caResource, this.deps.ca(), GATEWAY_CA_LINKS, `http://${gateway}`);
    if (path === STAFF_PAGE_PATH && this.deps.staffPage !== null) {
      const address = req.socket.remoteAddress ?? '';
      void this.deps.staffPage.serve(req, res, { address, profile: this.deps.policy().profileForAddress(address) }, path);
      return;
    }
    // The review and report forms, posted to (or opened on) the proxy itself: a block
    // page saved or opened outside the proxied session, or a device pointed at the gateway.
    const formKind = studentRequestKind(path, true);
    if (formKind !== null) {
      const address = req.socket.remoteAddress ?? '';
      void this.deps.studentRequests.serve(req, res, formKind, this.deps.policy().profileForAddress(address), address, path);
      return;
    }
    sendAnswer(res, errorAnswer('bad-request', null));
  }

  /**
   * The gateway's own pages inside an absolute-form or intercepted request, for
   * whatever site they were asked on; false when the flow is an ordinary request.
   */
  answerOnSite(flow: Flow, req: IncomingMessage, res: ServerResponse, inTunnel: boolean): boolean {
    const { target } = flow;
    if (target.host === TRUST_PROBE_HOST) {
      this.answerProbe(req, res, inTunnel ? flow.client.address : null);
      return true;
    }
    const pathname = target.path;
    const onAnyHost = pathname.startsWith('/__lachan__/');
    // A browser set to use the proxy for every address sends even the gateway's own
    // pages (http://GATEWAY:3128/lachan/report, /ca) in absolute form.
    const onGateway = !onAnyHost && (pathname.startsWith('/lachan/') || pathname.startsWith('/ca')) && addressedToProxy(flow, req);
    if (!onAnyHost && !onGateway) return false;
    const caResource = onAnyHost ? anyHostCaResource(pathname) : gatewayCaResource(pathname);
    if (caResource !== null) {
      const links = onAnyHost ? { der: CA_DER_PATH, pem: CA_PEM_PATH } : GATEWAY_CA_LINKS;
      serveCaResource(req, res, caResource, this.deps.ca(), links, `http://${onGateway ? target.authority : this.deps.advertisedProxy()}`);
      return true;
    }
    if (pathname === STAFF_PAGE_PATH && this.deps.staffPage !== null) {
      if (!addressedToProxy(flow, req)) {
        req.resume();
        sendAnswer(res, errorAnswer('bad-request', null));
      } else void this.deps.staffPage.serve(req, res, flow.client, pathname);
      return true;
    }
    const formKind = studentRequestKind(pathname, onGateway);
    if (formKind === null) return false;
    void this.deps.studentRequests.serve(req, res, formKind, flow.client.profile, flow.client.address, pathname);
    return true;
  }

  /** A request for the probe: inside an intercepted tunnel (`tunnelClient` set) it proves the device took the school's certificate. */
  private answerProbe(req: IncomingMessage, res: ServerResponse, tunnelClient: string | null): void {
    req.resume();
    if (tunnelClient === null || this.deps.ca() === null) {
      res.writeHead(404, { 'content-length': 0, 'cache-control': 'no-store' });
      res.end();
      return;
    }
    this.deps.deviceTrust.noteProbe(tunnelClient, true);
    // Any page may ask (the guide reads the result); the image is the same for everyone.
    res.writeHead(200, { 'content-type': 'image/gif', 'content-length': PROBE_IMAGE.length, 'cache-control': 'no-store', 'access-control-allow-origin': '*' });
    res.end(req.method === 'HEAD' ? undefined : PROBE_IMAGE);
  }
}

/** The install guide and the certificate under `/__lachan__/` on any host. */
function anyHostCaResource(path: string): CaResource | null {
  return path === CA_DER_PATH ? 'der' : path === CA_PEM_PATH ? 'pem' : path === CA_GUIDE_PATH ? 'guide' : null;
}

/** Whether a target names this proxy's own listening address and port. */
function addressedToProxy(flow: Flow, req: IncomingMessage): boolean {
  const { localAddress, localPort } = req.socket;
  if (localAddress === undefined || localPort !== flow.target.port) return false;
  return sameAddress(flow.target.host, localAddress);
}
