/**
 * The school's interception CA and per-host leaf certificates (docs/contract.md §2 `lachan ca`,
 * §4 interception). What src/proxy and src/cli use:
 *
 *   loadCa(dir)                          → CertificateAuthority | null (no CA: plain 403)
 *   ca.secureContextFor(host)            → Promise<tls.SecureContext>, cached per host
 *   createInterceptingTlsSocket(raw, host, ca, { head, alpn }) → server-side TLSSocket
 */
export { CertificateAuthority, type CertificateAuthorityOptions, type IssuedLeaf, type LeafKeyType } from './authority.js';
export { CA_CERT_FILE, CA_KEY_FILE, caPaths, initCa, loadCa, readCaCertificate, type CaPaths, type InitCaOptions } from './ca-files.js';
export { DEFAULT_CERTS_DIR, DEFAULT_SCHOOL_NAME } from './defaults.js';
export { createCaMaterial, caSubject, type CaMaterial, type CreateCaOptions } from './ca-material.js';
export { TlsError, type TlsErrorCode } from './errors.js';
export { certificateSubjectFor, type CertificateSubject } from './host.js';
export { createInterceptingTlsSocket, requestedServername, type InterceptOptions } from './intercept.js';
