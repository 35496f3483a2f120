/**
 * A TCP proxy on a free loopback port that can hold back the answers of its target: a Redis or
 * sentinel that answers slowly, as on a loaded machine, without touching the server. What the client
 * sends goes through at once; what the server sends arrives `delay` later, in order. A connection
 * whose first command is a SUBSCRIBE always passes through as it is: the messages it gets are
 * announcements, and a test of what a slow answer races needs them on time.
 */
import { createConnection, createServer, type Socket } from 'node:net';

export interface SlowProxy {
  /** `host:port` to connect to instead of the target. */
  readonly address: string;
  /** From now on, answers on every connection but the subscribers' arrive this much later. */
  setDelay(ms: number): void;
  stop(): Promise<void>;
}

export function startSlowProxy(target: { host: string; port: number }): Promise<SlowProxy> {
  let delayMs = 0;
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // A side that goes away closes the other; its error says nothing the test needs.
    socket.on('error', () => {});
  };
  const server = createServer((client) => {
    const upstream = createConnection(target);
    track(client);
    track(upstream);
    client.pipe(upstream);
    let subscriber = false;
    client.once('data', (chunk: Buffer) => {
      subscriber = /subscribe/i.test(chunk.toString('latin1'));
    });
    const later = (action: () => void) => {
      if (subscriber || delayMs === 0) action();
      else setTimeout(action, delayMs);
    };
    upstream.on('data', (chunk: Buffer) =>
      later(() => {
        if (!client.destroyed) client.write(chunk);
      }),
    );
    upstream.once('close', () => later(() => client.destroy()));
    client.once('close', () => upstream.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      resolve({
        address: `127.0.0.1:${port}`,
        setDelay: (ms) => {
          delayMs = ms;
        },
        stop: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
