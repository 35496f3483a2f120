/**
 * The event streams (`GET /jobs/:id/events`) one process keeps open. A stream lasts as long as its
 * client likes, so without a bound a few thousand idle clients would hold a process's sockets and
 * memory, and any open one would hold its shutdown (a server closes only once its connections have).
 * So there are at most SSE_MAX_STREAMS at once (past that a new one is refused with 503 and
 * Retry-After), each lasts at most SSE_MAX_LIFETIME_MS, and when the process stops every stream ends
 * at once. A stream that ends for one of these reasons is told why, so that its client reconnects
 * (and lands on whichever process has room, or is not stopping).
 */
import { TooManyStreamsError } from '../errors.js';

/** Why a stream was ended by the server rather than by its job: the name of its final event. */
export type StreamEnd = 'shutdown' | 'reconnect';

/** How long a refused client is asked to wait: streams end all the time, and another process may have room. */
const RETRY_AFTER_SECONDS = 2;

export interface StreamPlace {
  /**
   * What ends the stream when the server must: called at most once, at once if the process is
   * already stopping.
   */
  onEnd(end: (why: StreamEnd) => void): void;
  /** The stream ended (its job did, or its client left): its place is free. Safe to call twice. */
  release(): void;
}

export interface EventStreams {
  /** A place for one more stream; throws TooManyStreamsError when every place is taken. */
  take(): StreamPlace;
  /** The process is stopping: ends every open stream, and each one opened from now on at once. */
  endAll(): void;
}

export interface EventStreamsOptions {
  /** SSE_MAX_STREAMS. */
  readonly maxStreams: number;
  /** SSE_MAX_LIFETIME_MS. */
  readonly maxLifetimeMs: number;
}

export function createEventStreams({ maxStreams, maxLifetimeMs }: EventStreamsOptions): EventStreams {
  const open = new Set<(why: StreamEnd) => void>();
  let stopping = false;
  return {
    take() {
      if (open.size >= maxStreams) throw new TooManyStreamsError(maxStreams, RETRY_AFTER_SECONDS);
      let ended: StreamEnd | undefined;
      let end: ((why: StreamEnd) => void) | undefined;
      let released = false;
      const finish = (why: StreamEnd) => {
        if (released || ended !== undefined) return;
        ended = why;
        end?.(why);
      };
      const timer = setTimeout(() => finish('reconnect'), maxLifetimeMs);
      timer.unref();
      const release = () => {
        released = true;
        clearTimeout(timer);
        open.delete(finish);
      };
      open.add(finish);
      if (stopping) finish('shutdown');
      return {
        onEnd(callback) {
          end = callback;
          if (ended !== undefined && !released) callback(ended);
        },
        release,
      };
    },
    endAll() {
      stopping = true;
      for (const finish of [...open]) finish('shutdown');
    },
  };
}
