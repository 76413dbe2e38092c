import { connect, type Socket } from 'node:net';

/** Sockets one client holds open against the proxy, never sending a byte (or never reading one). */
export interface HeldSockets {
  readonly sockets: readonly Socket[];
  /** How many the server has closed so far. */
  closed(): number;
  /** How many are still open. */
  open(): number;
  release(): Promise<void>;
}

/**
 * Opens `count` real TCP connections to 127.0.0.1:`port` from the loopback address
 * `from` (any of 127/8 is this machine), `batch` at a time, and resolves once each is
 * connected or closed.
 */
export async function holdSockets(port: number, from: string, count: number, batch = 100): Promise<HeldSockets> {
  const sockets: Socket[] = [];
  let closed = 0;
  for (let start = 0; start < count; start += batch) {
    const opening: Promise<void>[] = [];
    for (let i = start; i < Math.min(count, start + batch); i++) {
      const socket = connect({ port, host: '127.0.0.1', localAddress: from });
      sockets.push(socket);
      socket.on('error', () => undefined);
      socket.once('close', () => closed++);
      opening.push(
        new Promise((resolve) => {
          socket.once('connect', () => resolve());
          socket.once('close', () => resolve());
        }),
      );
    }
    await Promise.all(opening);
  }
  return {
    sockets,
    closed: () => closed,
    open: () => sockets.length - closed,
    release: async () => {
      const gone = sockets.filter((s) => !s.destroyed).map((s) => new Promise<void>((resolve) => s.once('close', () => resolve())));
      for (const socket of sockets) socket.destroy();
      await Promise.all(gone);
    },
  };
}

/** Polls `check` until it holds (throws with `what` after `timeoutMs`): for states reached asynchronously, not for timing. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
