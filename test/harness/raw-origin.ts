import { createServer, type Server, type Socket } from 'node:net';

export interface RawRequest {
  readonly method: string;
  readonly path: string;
  /** Requests read on this connection so far, this one included. */
  readonly onConnection: number;
}

/**
 * An origin written raw with `net`: it reads request heads (bodies are not expected)
 * and lets `answer` write whatever bytes it likes, framings and errors Node's HTTP
 * server would never produce.
 */
export async function startRawOrigin(
  answer: (socket: Socket, request: RawRequest) => void,
): Promise<{ server: Server; port: number; connections: () => number }> {
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    let onConnection = 0;
    let pending = '';
    socket.on('error', () => undefined);
    socket.on('data', (data: Buffer) => {
      pending += data.toString('latin1');
      let end: number;
      while ((end = pending.indexOf('\r\n\r\n')) !== -1) {
        const head = pending.slice(0, end);
        pending = pending.slice(end + 4);
        const [method = '', path = ''] = head.split(' ');
        onConnection++;
        answer(socket, { method, path, onConnection });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port, connections: () => connections };
}
