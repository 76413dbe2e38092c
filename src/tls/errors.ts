/** Machine-readable codes of TlsError; callers branch on these, never on messages. */
export type TlsErrorCode =
  | 'LACHAN_CA_EXISTS'
  | 'LACHAN_CA_INCOMPLETE'
  | 'LACHAN_CA_UNREADABLE'
  | 'LACHAN_CA_KEY_PERMISSIONS'
  | 'LACHAN_CA_MISMATCH'
  | 'LACHAN_CA_INVALID'
  | 'LACHAN_CA_EXPIRED'
  | 'LACHAN_CA_MISSING'
  | 'LACHAN_TLS_BAD_HOST';

/** An error of the CA files or of certificate issuance, with a stable code. */
export class TlsError extends Error {
  readonly code: TlsErrorCode;
  constructor(code: TlsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TlsError';
    this.code = code;
  }
}
