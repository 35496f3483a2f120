/**
 * Closing a process's HTTP server so that no client holds its shutdown. Node's `server.close()` stops
 * accepting and then waits for every open connection, and an event stream, or a kept-alive socket,
 * stays open for as long as its client likes. So the event streams end first (each with a final
 * `shutdown` event), answers from then on say `Connection: close`, connections are closed as soon as
 * they are idle (those that finish an answer later included: Node closes only those idle when asked),
 * and whatever is still open at the deadline, a client that does not read, is destroyed.
 */
import type { Server } from 'node:http';
import type { Logger } from '../logging/logger.js';
import type { EventStreams } from './event-streams.js';

/** How often connections that have become idle since the close began are closed. */
const IDLE_SWEEP_MS = 50;

export interface ServerCloseOptions {
  readonly streams: Pick<EventStreams, 'endAll'>;
  /** How long answers under way may take before their connections are destroyed. */
  readonly deadlineMs: number;
  readonly logger: Logger;
}

export async function closeServer(server: Server, { streams, deadlineMs, logger }: ServerCloseOptions): Promise<void> {
  // Before the app's own listener, so that the header is set before any answer starts.
  server.prependListener('request', (_req, res) => res.setHeader('connection', 'close'));
  const closed = new Promise<void>((resolveClose, rejectClose) => {
    server.close((error) => (error ? rejectClose(error) : resolveClose()));
  });
  streams.endAll();
  server.closeIdleConnections();
  const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'deadline'>((resolveDeadline) => {
    timer = setTimeout(() => resolveDeadline('deadline'), deadlineMs);
  });
  try {
    if ((await Promise.race([closed, deadline])) === 'deadline') {
      logger.warn(
        { event: 'shutdown.http-cut', deadlineMs },
        `HTTP connections still busy ${deadlineMs} ms into the shutdown were closed`,
      );
      server.closeAllConnections();
      await closed;
    }
  } finally {
    clearInterval(sweep);
    clearTimeout(timer);
  }
}
