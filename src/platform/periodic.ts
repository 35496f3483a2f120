/**
 * A periodic task that never overlaps itself, so that a slow Redis cannot pile up heartbeats or
 * reconcile passes: the next scheduled run is set only after the previous one settles, a scheduled
 * run that comes due while another runs (one asked for with `runNow`) joins it, and `runNow` while a
 * run is under way queues exactly one follow-up, shared by every caller who asks meanwhile, so that
 * each caller still sees a run that started after it asked.
 */
export interface Periodic {
  /** Runs the task as soon as no run is under way; settles when that run ends. Never rejects. */
  runNow(): Promise<void>;
  /** No run starts after this; one under way is left to end. */
  stop(): void;
}

export function every(intervalMs: number, task: () => Promise<unknown>, onError: (error: unknown) => void): Periodic {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let current: Promise<void> | undefined;
  let followUp: Promise<void> | undefined;

  const start = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    current = (async () => {
      try {
        await task();
      } catch (error) {
        onError(error);
      }
    })().finally(() => {
      current = undefined;
    });
    return current;
  };

  const runNow = (): Promise<void> => {
    // A follow-up already waits (it may be about to start, its run just ended): share it.
    if (followUp !== undefined) return followUp;
    if (current === undefined) return start();
    followUp = current.then(() => {
      followUp = undefined;
      return start();
    });
    return followUp;
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      void (current ?? followUp ?? start()).then(schedule);
    }, intervalMs);
    timer.unref();
  };
  schedule();
  return {
    runNow,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
