/**
 * Rate-limits one kind of log line. While Redis is down, every connection and the BullMQ worker
 * report an error on each reconnect attempt; one line per interval says the same.
 */
export function throttled<A extends unknown[]>(
  intervalMs: number,
  log: (...args: [...A, { suppressed: number }]) => void,
): (...args: A) => void {
  let last = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (...args) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      suppressed += 1;
      return;
    }
    last = now;
    log(...args, { suppressed });
    suppressed = 0;
  };
}
