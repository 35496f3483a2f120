/** Free loopback ports for servers the tests start. */
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a server on ports chosen free, and again, up to `attempts` starts in all, when `taken` says
 * that another process took one of them before the server could bind it (an outgoing connection's
 * ephemeral port, beside other test files: seen in CI). `start` chooses its ports, afresh each time.
 */
export async function startOnFreePorts<T>(
  attempts: number,
  start: (attempt: number) => Promise<T>,
  taken: (error: unknown) => boolean,
): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await start(attempt);
    } catch (error) {
      if (attempt >= attempts || !taken(error)) throw error;
    }
  }
}
