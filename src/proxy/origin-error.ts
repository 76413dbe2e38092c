/** Errors of the origin client, with codes (see classifyUpstreamError in server.ts for how they reach pages). */

export type OriginErrorCode =
  | 'LACHAN_UPSTREAM_CONNECT_TIMEOUT'
  | 'LACHAN_UPSTREAM_HEADERS_TIMEOUT'
  | 'LACHAN_UPSTREAM_BODY_TIMEOUT'
  | 'LACHAN_UPSTREAM_BAD_RESPONSE'
  | 'LACHAN_UPSTREAM_CLOSED';

export class OriginError extends Error {
  constructor(
    readonly code: OriginErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'OriginError';
  }

  get isTimeout(): boolean {
    return this.code.endsWith('_TIMEOUT');
  }
}

export function badResponse(message: string): OriginError {
  return new OriginError('LACHAN_UPSTREAM_BAD_RESPONSE', message);
}
