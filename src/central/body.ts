import type { IncomingMessage } from 'node:http';
import { gunzip, gunzipSync } from 'node:zlib';

export class BodyError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export interface BodyLimits {
  /** Bytes on the wire (compressed or not). */
  readonly maxBytes: number;
  /** Bytes after gunzip: a small gzip body can inflate to gigabytes. */
  readonly maxInflatedBytes: number;
}

/** Reads a request body within the limits, gunzipping it when it says so. */
export async function readBody(request: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  const declared = request.headers['content-length'];
  if (declared !== undefined && Number(declared) > limits.maxBytes) {
    throw new BodyError(413, `body larger than ${limits.maxBytes} bytes`);
  }
  const raw = await collect(request, limits.maxBytes);
  const encoding = (request.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding === 'identity' || encoding === '') return raw;
  if (encoding !== 'gzip') throw new BodyError(415, `content-encoding ${encoding} not supported (gzip or none)`);
  return gunzipWithin(raw, limits.maxInflatedBytes);
}

/**
 * A body that inflates to at most this many bytes is inflated on the event loop: a
 * shipper's batch (500 events, ~150 KB) takes a few hundred microseconds there, while the
 * thread pool's hop a 16 KB chunk costs more CPU than the inflating itself
 * (bench:province's profile of `central serve`). Anything larger, up to the limit, goes
 * to the thread pool, so no body holds the loop for more than about a millisecond.
 */
const INFLATE_INLINE_BYTES = 1024 * 1024;

async function gunzipWithin(raw: Buffer, maxInflatedBytes: number): Promise<Buffer> {
  const inline = Math.min(maxInflatedBytes, INFLATE_INLINE_BYTES);
  // The size the gzip trailer declares (modulo 4 GiB, of the last member only): a hint, not
  // trusted, that spares inflating the first megabyte of a large body on the loop twice.
  const declared = raw.length >= 18 ? raw.readUInt32LE(raw.length - 4) : 0;
  if (declared <= inline) {
    try {
      return gunzipSync(raw, { maxOutputLength: inline, chunkSize: 64 * 1024 });
    } catch (error) {
      if (!tooLarge(error) || inline === maxInflatedBytes) throw inflateError(error, maxInflatedBytes);
    }
  }
  return new Promise((resolve, reject) => {
    gunzip(raw, { maxOutputLength: maxInflatedBytes }, (error, inflated) => {
      if (error === null) resolve(inflated);
      else reject(inflateError(error, maxInflatedBytes));
    });
  });
}

function tooLarge(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
}

function inflateError(error: unknown, maxInflatedBytes: number): BodyError {
  return tooLarge(error) ? new BodyError(413, `body inflates past ${maxInflatedBytes} bytes`) : new BodyError(400, 'body is not valid gzip');
}

/** How much of a refused body is read and thrown away at most before the close, in bytes and time. */
const LINGER_BYTES = 16 * 1024 * 1024;
const LINGER_MS = 5_000;

/**
 * Makes the close that follows the answer to a request whose body was refused unread a
 * lingering one, as nginx's: the answer is sent and the sending side shut, but the rest
 * of the body is read and thrown away (within bounds) before the socket goes. Closing a
 * socket with unread bytes makes the kernel reset the connection, and a client still
 * writing its body would then see a broken pipe instead of the 413 already sent.
 * Node closes a `connection: close` response through `socket.destroySoon()`, which is the
 * one place to change.
 */
export function lingerOnClose(request: IncomingMessage): void {
  const socket = request.socket;
  socket.destroySoon = () => {
    let discarded = 0;
    const close = () => {
      clearTimeout(timer);
      socket.destroy();
    };
    const timer = setTimeout(close, LINGER_MS);
    timer.unref();
    socket.on('data', (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > LINGER_BYTES) close();
    });
    socket.once('end', close);
    socket.once('error', close);
    socket.end();
    socket.resume();
  };
}

/**
 * Collects the body, refusing it as soon as it passes `maxBytes`. The request is paused
 * rather than destroyed then, so the caller can still answer 413 before closing.
 */
function collect(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        request.pause();
        reject(new BodyError(413, `body larger than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(new BodyError(400, `body unreadable: ${error.message}`));
    };
    const cleanup = () => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
    };
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
  });
}
