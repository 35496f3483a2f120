/** Free loopback ports for servers the tests start. */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Below the kernel's range for outgoing connections' ports (`ip_local_port_range`), and above the usual services'. */
const LOWEST = 10_000;
const TRIES = 50;

/**
 * The first port the kernel may give an outgoing connection. A port chosen free at or above it can
 * be taken by any connection opened before the server binds it (seen in CI: a service refusing its
 * PORT a second after the check); below it, only another listener can take it.
 */
function ephemeralStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > LOWEST + 1000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/** Listens on `port` (0: any) and closes again: the port it got, or undefined when it was taken. */
function tryPort(port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) =>
      error.code === 'EADDRINUSE' || error.code === 'EACCES' ? resolve(undefined) : reject(error),
    );
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(bound));
    });
  });
}

/**
 * A loopback port nobody listens on now, chosen at random below the outgoing connections' range, so
 * that only another test's listener picking the same port in the same moment can take it first.
 */
export async function freePort(): Promise<number> {
  const below = ephemeralStart();
  for (let attempt = 0; attempt < TRIES; attempt += 1) {
    const port = await tryPort(LOWEST + Math.floor(Math.random() * (below - LOWEST)));
    if (port !== undefined) return port;
  }
  const any = await tryPort(0);
  if (any === undefined) throw new Error('no free loopback port');
  return any;
}

/**
 * Starts a server on ports chosen free, and again, up to `attempts` starts in all, when `taken` says
 * that another process took one of them before the server could bind it (another test file's
 * listener that chose the same port in the same moment). `start` chooses its ports, afresh each time.
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
