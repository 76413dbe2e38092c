import { ResponseReader } from '../../src/proxy/http1/response-reader.js';

/**
 * Feeds a ResponseReader pieces of one connection's bytes, then its close, and records
 * what a user of the response would see: the head, the body bytes joined, how it ended,
 * and whether bytes followed the response. Comparing the records of the same bytes cut
 * differently is the reader's split-invariance.
 */

export interface ReaderRun {
  head: { status: number; fields: string[]; framing: number; length: number; keepAlive: boolean } | null;
  body: string;
  /** `end`, `end at close`, `error: <message>`, or `incomplete` (the close came mid-response). */
  outcome: string;
  /** Bytes came after the response's end. */
  extra: boolean;
}

export function runReader(pieces: readonly Buffer[], isHead = false, maxHeadBytes = 64 * 1024): ReaderRun {
  const run: ReaderRun = { head: null, body: '', outcome: 'incomplete', extra: false };
  const reader = new ResponseReader(
    {
      onHead: (head) => {
        run.head = { status: head.status, fields: head.fields, framing: head.framing, length: head.length, keepAlive: head.keepAlive };
      },
      onData: (chunk) => {
        run.body += chunk.toString('latin1');
      },
      onEnd: (last, trailingBytes) => {
        if (last !== undefined) run.body += last.toString('latin1');
        run.outcome = 'end';
        run.extra ||= trailingBytes;
      },
      onError: (error) => {
        run.outcome = `error: ${error.message}`;
      },
    },
    maxHeadBytes,
  );
  reader.start(isHead);
  for (const piece of pieces) {
    if (!reader.idle) reader.feed(piece);
    else if (run.outcome === 'end' && piece.length > 0) run.extra = true;
  }
  if (reader.endOfInput()) run.outcome = 'end at close';
  return run;
}

/** `bytes` cut at each of `at` (sorted, within bounds). */
export function cut(bytes: Buffer, at: readonly number[]): Buffer[] {
  const pieces: Buffer[] = [];
  let from = 0;
  for (const to of at) {
    pieces.push(bytes.subarray(from, to));
    from = to;
  }
  pieces.push(bytes.subarray(from));
  return pieces;
}

export function bytewise(bytes: Buffer): Buffer[] {
  return Array.from(bytes, (byte) => Buffer.from([byte]));
}
