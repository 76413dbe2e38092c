import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OriginClient, OriginError, requestHead, type OriginClientOptions, type OriginResponseHandler } from '../src/proxy/origin-client.js';

/**
 * The origin client's pool on its own, against a real origin on loopback: the limit of
 * connections per origin, requests queued behind it, aborts at each stage, shutdown.
 * (The proxy's tests drive the client through `lachan serve`, where the limit is 64.)
 */

interface Outcome {
  status: number | null;
  body: string;
  error: Error | null;
  done: boolean;
}

/** A handler that records what it hears, and can abort. */
function recorder(): { handler: OriginResponseHandler; outcome: Outcome; abort: () => void; finished: Promise<void> } {
  const outcome: Outcome = { status: null, body: '', error: null, done: false };
  let abort: () => void = () => undefined;
  let settle: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (settle = resolve));
  const end = (): void => {
    outcome.done = true;
    settle();
  };
  const handler: OriginResponseHandler = {
    onRequestStart: (controller) => {
      abort = () => controller.abort(new Error('abandoned'));
    },
    onResponseStart: (_controller, status) => {
      outcome.status = status;
    },
    onResponseData: (_controller, chunk) => {
      outcome.body += chunk.toString('latin1');
    },
    onResponseEnd: end,
    onResponseLastData: (_controller, chunk) => {
      outcome.body += chunk.toString('latin1');
      end();
    },
    onResponseError: (_controller, error) => {
      outcome.error = error;
      end();
    },
  };
  return { handler, outcome, abort: () => abort(), finished };
}

let origin: Server;
let port: number;
let open = 0;
let mostOpen = 0;
let accepted = 0;
/** Answers are held until released, so that requests pile up behind the limit. */
const held: Socket[] = [];

beforeAll(async () => {
  origin = createServer((socket) => {
    accepted++;
    open++;
    mostOpen = Math.max(mostOpen, open);
    socket.on('close', () => open--);
    socket.on('error', () => undefined);
    socket.on('data', (data: Buffer) => {
      const path = data.toString('latin1').split(' ')[1];
      if (path === '/hold') held.push(socket);
      else if (path === '/big') socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${1024 * 1024}\r\n\r\n${'x'.repeat(64 * 1024)}`);
      else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  port = (origin.address() as { port: number }).port;
});

afterAll(() => {
  origin.close();
});

function client(overrides: Partial<OriginClientOptions> = {}): OriginClient {
  return new OriginClient({
    resolve: (hostname) => Promise.resolve(hostname),
    connectTimeoutMs: 5_000,
    headersTimeoutMs: 5_000,
    bodyIdleMs: 5_000,
    connectionsPerOrigin: 2,
    idleMs: 4_000,
    maxHeadBytes: 64 * 1024,
    ...overrides,
  });
}

const get = (path: string): { hostname: string; port: number; secure: boolean; head: string; isHead: boolean } => ({
  hostname: '127.0.0.1',
  port,
  secure: false,
  head: requestHead('GET', path, ['host', `127.0.0.1:${port}`]),
  isHead: false,
});

function releaseHeld(): void {
  for (const socket of held.splice(0)) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nheld');
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('origin client pool', () => {
  it('keeps to its connections per origin, queues the rest, and serves the queue as answers come', async () => {
    const pool = client();
    const base = open;
    mostOpen = base;
    const before = accepted;
    const requests = Array.from({ length: 5 }, () => recorder());
    for (const request of requests) pool.request(get('/hold'), request.handler);
    await until(() => held.length === 2);
    expect(held.length).toBe(2);
    expect(requests.filter((r) => r.outcome.done)).toHaveLength(0);
    // Release answers until every request has had one; the queue moves onto the freed connections.
    while (!requests.every((r) => r.outcome.done)) {
      releaseHeld();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(requests.map((r) => r.outcome.body)).toEqual(['held', 'held', 'held', 'held', 'held']);
    expect(accepted - before).toBe(2);
    expect(mostOpen - base).toBe(2);
    pool.close();
  });

  it('stops counting a connection whose client stopped reading, so a request queued behind it is served', async () => {
    // Long deadlines: without the rule, the queued request would wait for the stalled one's body timeout (2 minutes).
    const pool = client({ connectionsPerOrigin: 1, bodyIdleMs: 60_000 });
    const neverReads = recorder();
    neverReads.handler.onResponseData = (controller) => controller.pause();
    pool.request(get('/big'), neverReads.handler);
    const queued = recorder();
    pool.request(get('/plain'), queued.handler);
    await queued.finished;
    expect(queued.outcome.body).toBe('ok');
    expect(neverReads.outcome.done).toBe(false);
    pool.close();
  });

  it('drops a queued request the client abandoned, without a callback, and serves the next', async () => {
    // A long head deadline: a wrongly sent abandoned request would hold the only connection.
    const pool = client({ connectionsPerOrigin: 1, headersTimeoutMs: 60_000 });
    const first = recorder();
    const abandoned = recorder();
    const third = recorder();
    pool.request(get('/hold'), first.handler);
    pool.request(get('/hold'), abandoned.handler);
    pool.request(get('/plain'), third.handler);
    await until(() => held.length === 1);
    abandoned.abort();
    releaseHeld();
    await third.finished;
    await first.finished;
    expect(first.outcome.body).toBe('held');
    expect(third.outcome.body).toBe('ok');
    expect(abandoned.outcome.done).toBe(false);
    // The abandoned request never reached the origin.
    expect(held).toHaveLength(0);
    pool.close();
  });

  it('closes the connection of a request aborted mid-wait, and the pool goes on with a new one', async () => {
    const pool = client({ connectionsPerOrigin: 1 });
    const waiting = recorder();
    pool.request(get('/hold'), waiting.handler);
    await until(() => held.length === 1);
    const socket = held[0]!;
    waiting.abort();
    await until(() => socket.destroyed || socket.readableEnded);
    held.splice(0);
    expect(waiting.outcome.done).toBe(false);
    const next = recorder();
    pool.request(get('/plain'), next.handler);
    await next.finished;
    expect(next.outcome.body).toBe('ok');
    pool.close();
  });

  it('answers requests still queued at shutdown with an error instead of leaving them hanging', async () => {
    const pool = client({ connectionsPerOrigin: 1 });
    const busy = recorder();
    const queued = recorder();
    pool.request(get('/hold'), busy.handler);
    pool.request(get('/plain'), queued.handler);
    await until(() => held.length === 1);
    pool.close();
    await queued.finished;
    expect(queued.outcome.error).toBeInstanceOf(OriginError);
    const late = recorder();
    pool.request(get('/plain'), late.handler);
    await late.finished;
    expect(late.outcome.error).toBeInstanceOf(OriginError);
    releaseHeld();
    await busy.finished;
    expect(busy.outcome.body).toBe('held');
  });

  it('reports a refused destination from the resolver, and frees the slot', async () => {
    const pool = client({
      connectionsPerOrigin: 1,
      resolve: (hostname) => (hostname === 'forbidden.test' ? Promise.reject(new Error('refused')) : Promise.resolve(hostname)),
    });
    const refused = recorder();
    pool.request({ ...get('/plain'), hostname: 'forbidden.test' }, refused.handler);
    await refused.finished;
    expect(refused.outcome.error?.message).toBe('refused');
    const fine = recorder();
    pool.request(get('/plain'), fine.handler);
    await fine.finished;
    expect(fine.outcome.body).toBe('ok');
    pool.close();
  });
});
