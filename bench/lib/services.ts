/** The service and its comparisons, started the same way for every scenario. */
import { startRedis, type TestRedis } from '../../test/support/redis-server.js';
import { startService, type Service } from '../../test/support/service.js';
import { startBaseline, type Baseline } from './baseline.js';

export const WORKERS = 4;
export const CONCURRENCY = 8;
export const HANDLERS_DIR = 'dist/bench/handlers';

/** Settings shared by every bench run of the service: bench handlers, room for big backlogs, defaults otherwise. */
export const SERVICE_ENV = {
  WORKER_CONCURRENCY: String(CONCURRENCY),
  HANDLERS_DIR,
  // The defaults a new user gets: info (per-job lines are debug, so none is written), and every job
  // thread started up front, and the 500 ms Redis time-out of requests (the test harness changes both).
  LOG_LEVEL: 'info',
  WARM_THREADS: '',
  COMMAND_TIMEOUT_MS: '',
  MAX_BACKLOG: '10000000',
  COMPLETED_RETENTION_COUNT: '1000000',
  SHUTDOWN_TIMEOUT_MS: '1000',
} as const;

export interface Pair {
  readonly redis: TestRedis;
  readonly service: Service;
  readonly baseline: Baseline;
  stop(): Promise<void>;
}

/** One Redis holding both, so that both pay the same Redis. */
export async function startPair(mode: 'shared' | 'running', env: Record<string, string> = {}): Promise<Pair> {
  const redis = await startRedis();
  const service = await startService({ redisUrl: redis.url, workers: WORKERS, env: { ...SERVICE_ENV, ...env } });
  const baseline = await startBaseline({
    redisUrl: redis.url,
    mode,
    workers: WORKERS,
    concurrency: CONCURRENCY,
    handlersDir: HANDLERS_DIR,
  });
  return {
    redis,
    service,
    baseline,
    async stop() {
      await Promise.allSettled([service.stop('SIGTERM', 20_000), baseline.stop()]);
      await redis.stop();
    },
  };
}
