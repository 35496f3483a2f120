/**
 * The test side of the gate fixture (test/fixtures/handlers/gate.ts): jobs named `gate` start, report
 * themselves in Redis, and hold their slots until the test opens the gate. A service that runs them
 * needs `HANDLERS_DIR: FIXTURE_HANDLERS`.
 *
 * On a Redis Cluster too: the gate's keys share one hash tag, so they live on one master, and the
 * fixture follows the MOVED answer of the node it was given to that master.
 */
import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../../src/redis/connections.js';
import { enqueueOne, type Enqueued } from './jobs.js';
import type { Service } from './service.js';
import { waitFor } from './wait.js';

export const FIXTURE_HANDLERS = 'dist/test/fixtures/handlers';
export const GATE_JOB = 'gate';

export interface Gate {
  readonly key: string;
  /** Job data that makes a `gate` job wait on this gate; `extra` is merged in. */
  data(extra?: Record<string, unknown>): Record<string, unknown>;
  /** Ids of the jobs that have started so far, in start order (retries and re-runs count again). */
  started(): Promise<string[]>;
  /** Waits until at least `count` starts have been reported. */
  waitStarted(count: number, timeoutMs?: number): Promise<string[]>;
  /** Lets every held job, and every later one, end successfully. */
  open(): Promise<void>;
  /** Makes every held job, and every later one, throw. */
  fail(): Promise<void>;
}

/**
 * `redisUrl` is what the job threads connect to: one server, or any node of a cluster (see
 * `ModeRedis.nodeUrl`); `client` is the test's own.
 */
export function createGate(client: RedisClient, redisUrl: string): Gate {
  const key = `gate:{${randomBytes(4).toString('hex')}}`;
  const started = () => client.lrange(`${key}:started`, 0, -1);
  // The state first, then the wake-up: a held job reads the state again once woken (see the fixture).
  const settle = async (state: 'open' | 'fail') => {
    await client.set(`${key}:state`, state);
    await client.xadd(`${key}:wake`, '*', 'state', state);
  };
  return {
    key,
    data: (extra = {}) => ({ ...extra, gate: { redisUrl, key } }),
    started,
    waitStarted: (count, timeoutMs = 60_000) =>
      waitFor(
        async () => {
          const ids = await started();
          return ids.length >= count ? ids : undefined;
        },
        { timeoutMs, intervalMs: 50, what: `${count} gate jobs to start` },
      ),
    open: () => settle('open'),
    fail: () => settle('fail'),
  };
}

/** A gate open from the start: its jobs run straight through, and `started()` says which ran, in order. */
export async function openGate(client: RedisClient, redisUrl: string): Promise<Gate> {
  const gate = createGate(client, redisUrl);
  await gate.open();
  return gate;
}

/**
 * Holds `count` slots of `service` with jobs on `gate`, enqueued one after another as any jobs would
 * be (each routed to the least-loaded worker then), and returns them once every one has started.
 */
export async function holdSlots(service: Service, gate: Gate, count: number): Promise<Enqueued[]> {
  const held: Enqueued[] = [];
  for (let i = 0; i < count; i += 1) held.push(await enqueueOne(service, GATE_JOB, gate.data()));
  await gate.waitStarted(count);
  return held;
}
