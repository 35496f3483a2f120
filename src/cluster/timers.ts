/**
 * A periodic task that never overlaps itself: the next run is scheduled only after the previous one
 * settles, so a slow Redis cannot pile up heartbeats or reconcile passes.
 */
export interface Periodic {
  runNow(): Promise<void>;
  stop(): void;
}

export function every(intervalMs: number, task: () => Promise<unknown>, onError: (error: unknown) => void): Periodic {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const run = async () => {
    try {
      await task();
    } catch (error) {
      onError(error);
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      void run().then(schedule);
    }, intervalMs);
    timer.unref();
  };
  schedule();
  return {
    runNow: run,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
