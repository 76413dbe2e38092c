/**
 * The names and markup by which devices show whether they trust the school CA, shared
 * by the pages that carry the probe and the proxy that answers it. No imports: the
 * block page template and the proxy both read these.
 */

/**
 * The probe's host. `.invalid` is reserved (RFC 6761) and never names a real site, so
 * the gateway can answer it itself; a device reaches it only through the proxy, which
 * always intercepts it with a certificate from the school CA.
 */
export const TRUST_PROBE_HOST = 'lachan-probe.invalid';
export const TRUST_PROBE_PATH = '/__lachan__/tin-cay.gif';
export const TRUST_PROBE_URL = `https://${TRUST_PROBE_HOST}${TRUST_PROBE_PATH}`;

/** The install guide and the certificate, answered on any proxied host (as the review form is). */
export const CA_GUIDE_PATH = '/__lachan__/ca/huong-dan';
export const CA_DER_PATH = '/__lachan__/ca';
export const CA_PEM_PATH = '/__lachan__/ca.pem';

/**
 * Hidden probe plus the link to the install guide, for the block page. Loading the
 * image is what tells the gateway that this device trusts the school CA.
 */
export const TRUST_FOOTER =
  `<p><small><a href="${CA_GUIDE_PATH}">Cài chứng chỉ của trường cho thiết bị này</a></small>` +
  `<img src="${TRUST_PROBE_URL}" alt="" width="1" height="1" style="position:absolute;opacity:0"></p>`;
