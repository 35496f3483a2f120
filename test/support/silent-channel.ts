/**
 * The process end of an IPC channel whose primary takes every message and answers none, as a primary
 * that is stalled or busy would: for tests of what a process does when its scrape is never answered.
 */
export function silentChannel() {
  return {
    on: () => undefined,
    off: () => undefined,
    send: (_message: unknown, callback: (error: Error | null) => void) => {
      setImmediate(() => callback(null));
      return true;
    },
  };
}
