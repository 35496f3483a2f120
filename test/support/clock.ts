/**
 * A clock a test moves on by hand, for the ledger's objects (their `clock` option): a lease expires
 * when the test says so, instead of after a sleep that a loaded machine may stretch. It starts at
 * the real time, so that what is stamped without it (heartbeats of `joinAsWorker`, BullMQ's own
 * times) stays close to it.
 */
export interface TestClock {
  /** The current time, in ms: pass it as the `clock` of every ledger object of the test. */
  readonly now: () => number;
  advance(ms: number): void;
}

export function testClock(start = Date.now()): TestClock {
  let at = Math.floor(start);
  return {
    now: () => at,
    advance(ms) {
      at += ms;
    },
  };
}
