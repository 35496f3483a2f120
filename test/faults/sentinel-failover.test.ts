/**
 * Bullpen through Redis Sentinel (issue 21), against real redis-servers: one master, one replica and
 * three sentinels (test/support/redis-sentinel.ts). The service finds its master through the
 * sentinels and says so in /healthz and its start-up line; a SIGKILL of the master under a bounded
 * load leads to a promotion, the requests meanwhile answer 503 (never hang), and the service serves
 * again on the new master by itself, counting the change. Jobs accepted after the promotion, and
 * before the kill, complete; a job accepted in the last moment before the kill may be lost with the
 * master (durable acceptance off: its add had not reached the replica), which the README's loss
 * window says, and the load ledger comes back exact. With durable acceptance on (ENQUEUE_MIN_REPLICAS)
 * no job answered 202 is lost with the master. A wrong master name and unreachable sentinels stop
 * start-up with a stable event.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { enqueueMany, waitForIdle, waitForJobs, type Enqueued, type JobView } from '../support/jobs.js';
import { freePort } from '../support/ports.js';
import { parseMetrics, total } from '../support/prom-text.js';
import { startRedisSentinel, type TestSentinel } from '../support/redis-sentinel.js';
import { refusedAtStart } from '../support/refused-start.js';
import { worksThroughSentinel } from '../support/sentinel-checks.js';
import { startService, type Service } from '../support/service.js';
import { waitFor } from '../support/wait.js';

const WORKERS = 2;
/** 202s in a row, after the promotion, that show every process serving again. */
const SERVING_AGAIN = 20;
const COMMAND_TIMEOUT_MS = 1_000;
/** A generous bound on serving again after the promotion: past it the load fails and says what it got. */
const SERVING_AGAIN_WITHIN_MS = 60_000;
/**
 * The longest an answer may take while the master is away: a request never hangs. Generous (the
 * time-out of the add, then of the undo, plus a loaded machine); a hang would wait for the promotion.
 */
const ANSWER_BOUND_MS = 2 * COMMAND_TIMEOUT_MS + 5_000;

/** An enqueue on a fresh connection (so that requests reach every process), and how long it took. */
async function timedEnqueue(
  service: Service,
  jobName: string,
): Promise<{ status: number; body: Enqueued & { code?: string }; text: string; elapsedMs: number }> {
  const startedAt = Date.now();
  const response = await service.request<Enqueued & { code?: string }>('POST', '/enqueue-task', {
    body: JSON.stringify({ jobName, data: { durationMs: 0 } }),
    headers: { 'content-type': 'application/json', connection: 'close' },
  });
  const elapsedMs = Date.now() - startedAt;
  assert.ok(elapsedMs <= ANSWER_BOUND_MS, `an enqueue answered ${response.status} in ${elapsedMs} ms`);
  return { ...response, elapsedMs };
}

interface FailoverLoad {
  /** Every 202, and whether the promotion was known when its request was sent. */
  readonly accepted: readonly { readonly job: Enqueued; readonly afterPromotion: boolean }[];
  /** The 503s by code. */
  readonly refusals: ReadonlyMap<string, number>;
  readonly old: string;
  readonly promoted: string;
}

/**
 * One enqueue at a time on a fresh connection (a bounded load that reaches every process) while the
 * master is SIGKILLed and a replica promoted, until SERVING_AGAIN 202s in a row follow the promotion.
 * Every answer is a 202 or a 503, within ANSWER_BOUND_MS.
 */
async function enqueueThroughFailover(
  service: Service,
  sentinel: TestSentinel,
  jobName: string,
): Promise<FailoverLoad> {
  const accepted: { job: Enqueued; afterPromotion: boolean }[] = [];
  const refusals = new Map<string, number>();
  /** The promoted master once the sentinels agree on it: what the load marks its 202s by. */
  const failover: { promoted?: string; promotedAt?: number } = {};
  let inARow = 0;
  /** The answers since the promotion, for the message of a load that never sees the service serve again. */
  const since: string[] = [];
  const load = (async () => {
    while (inARow < SERVING_AGAIN) {
      if (failover.promotedAt !== undefined && Date.now() - failover.promotedAt > SERVING_AGAIN_WITHIN_MS) {
        const redisLines = service.logs
          .filter((line) => String(line.event).startsWith('redis.') || Number(line.level) >= 40)
          .slice(-30)
          .map((line) => JSON.stringify(line));
        throw new Error(
          `not serving again ${SERVING_AGAIN_WITHIN_MS} ms after the promotion: ${since.slice(-40).join(' ')}\n` +
            redisLines.join('\n'),
        );
      }
      const afterPromotion = failover.promoted !== undefined;
      const response = await timedEnqueue(service, jobName);
      if (afterPromotion) since.push(response.status === 202 ? '202' : `503:${String(response.body.code)}`);
      if (response.status === 202) {
        accepted.push({ job: response.body, afterPromotion });
        inARow = afterPromotion ? inARow + 1 : 0;
      } else {
        assert.equal(response.status, 503, response.text);
        const code = String(response.body.code);
        refusals.set(code, (refusals.get(code) ?? 0) + 1);
        inARow = 0;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  })();
  await waitFor(() => accepted.length >= 5, { what: 'load before the kill' });
  const old = await sentinel.killMaster();
  const promoted = await sentinel.waitForPromotion(old);
  failover.promotedAt = Date.now();
  failover.promoted = promoted;
  await load;
  return { accepted, refusals, old, promoted };
}

interface Health {
  readonly status: string;
  readonly redis: boolean;
  readonly redisMode?: string;
  readonly redisMaster?: string;
}

describe('Redis Sentinel', { timeout: 180_000 }, () => {
  let sentinel: TestSentinel;
  let service: Service;

  before(async () => {
    sentinel = await startRedisSentinel();
    service = await startService({
      redisUrl: '',
      sentinels: { list: sentinel.sentinels, master: sentinel.master },
      workers: WORKERS,
      // A request during the switch answers 503 soon, as in production.
      env: { COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS) },
    });
  });
  after(async () => {
    await service?.stop();
    await sentinel?.stop();
  });

  test('works through the sentinels, naming the mode and the master', async () => {
    await worksThroughSentinel(service, sentinel, 'through-sentinel');
  });

  test('a SIGKILLed master is replaced: 503s meanwhile, then every process serves the new master', async () => {
    const before = await enqueueMany(service, 4, 'before-kill', { durationMs: 0 });
    await waitForJobs(service, before, { timeoutMs: 30_000 });

    const { accepted, old, promoted } = await enqueueThroughFailover(service, sentinel, 'failover');
    assert.notEqual(promoted, old);

    // Accepted after the promotion: on the new master, so each completes.
    const afterwards = accepted.filter((entry) => entry.afterPromotion).map((entry) => entry.job);
    assert.ok(afterwards.length >= SERVING_AGAIN);
    await waitForJobs(service, afterwards, { timeoutMs: 60_000 });
    // Accepted before: completed, or lost with the master when their add had not reached the replica.
    const earlier = accepted.filter((entry) => !entry.afterPromotion).map((entry) => entry.job);
    const lost = await waitFor(
      async () => {
        const views = await Promise.all(
          earlier.map((job) => service.request<JobView>('GET', `/jobs/${encodeURIComponent(job.jobId)}`)),
        );
        const missing = views.filter((view) => view.status === 404).length;
        const done = views.filter((view) => view.status === 200 && view.body.state === 'completed').length;
        return missing + done === earlier.length ? missing : undefined;
      },
      { timeoutMs: 60_000, what: 'the jobs accepted before the promotion to complete or be known lost' },
    );
    assert.ok(lost <= earlier.length);
    await waitForIdle(service);

    await waitFor(
      async () => {
        const health = await service.request<Health>('GET', '/healthz', { headers: { connection: 'close' } });
        return health.status === 200 && health.body.redisMaster === promoted;
      },
      { timeoutMs: 30_000, what: '/healthz to name the promoted master' },
    );
    const metrics = await service.request('GET', '/metrics');
    const changes = total(parseMetrics(metrics.text), 'bullpen_redis_master_changes_total');
    assert.ok(changes >= 1, `a master change is counted: ${changes}`);
    assert.ok(service.logs.some((line) => line.event === 'redis.master-changed' && line.to === promoted));
  });
});

describe('Redis Sentinel with durable acceptance', { timeout: 180_000 }, () => {
  let sentinel: TestSentinel;
  let service: Service;

  before(async () => {
    // Two replicas: once one is promoted, the other follows it, and a WAIT for one replica can succeed again.
    sentinel = await startRedisSentinel({ replicas: 2 });
    service = await startService({
      redisUrl: '',
      sentinels: { list: sentinel.sentinels, master: sentinel.master },
      workers: WORKERS,
      env: {
        COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
        ENQUEUE_MIN_REPLICAS: '1',
        ENQUEUE_REPLICA_TIMEOUT_MS: '1000',
      },
    });
  });
  after(async () => {
    await service?.stop();
    await sentinel?.stop();
  });

  test('a SIGKILLed master loses no job answered 202: each one completes', async () => {
    // Refused while the master is away (QUEUE_UNAVAILABLE) or while no replica follows the new one yet
    // (NOT_DURABLE): never a 202 for a job that could be lost.
    const { accepted: answered, refusals } = await enqueueThroughFailover(service, sentinel, 'durable-failover');
    const accepted = answered.map((entry) => entry.job);
    assert.deepEqual(
      [...refusals.keys()].filter((code) => code !== 'QUEUE_UNAVAILABLE' && code !== 'NOT_DURABLE'),
      [],
      'only the documented refusals',
    );

    // Every job answered 202, before the kill too, reached a replica first: the promoted master holds it.
    const views = await waitForJobs(service, accepted, { timeoutMs: 90_000 });
    assert.equal(views.length, accepted.length);
    assert.equal(new Set(views.map((view) => view.jobId)).size, accepted.length, 'one job per 202');
    await waitForIdle(service);
  });
});

describe('Redis Sentinel misconfigured', { timeout: 120_000 }, () => {
  let sentinel: TestSentinel;
  before(async () => {
    sentinel = await startRedisSentinel({ replicas: 0 });
  });
  after(async () => {
    await sentinel?.stop();
  });

  test('a master name no sentinel watches stops start-up, naming the setting', async () => {
    const { fatal } = await refusedAtStart({
      redisUrl: '',
      sentinels: { list: sentinel.sentinels, master: 'no-such-master' },
    });
    assert.equal(fatal.event, 'redis.sentinel-master-unknown');
    assert.deepEqual([fatal.master, fatal.setting], ['no-such-master', 'REDIS_SENTINEL_MASTER']);
  });

  test('sentinels that do not answer stop start-up after REDIS_SENTINEL_START_TIMEOUT_MS', async () => {
    const nobody = await freePort();
    const { fatal } = await refusedAtStart({
      redisUrl: '',
      sentinels: { list: `127.0.0.1:${nobody}`, master: sentinel.master },
      env: { REDIS_SENTINEL_START_TIMEOUT_MS: '2000' },
    });
    assert.equal(fatal.event, 'redis.sentinels-unreachable');
    assert.deepEqual([fatal.setting, fatal.timeoutMs], ['REDIS_SENTINELS', 2000]);
  });
});
