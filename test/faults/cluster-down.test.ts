/**
 * A Redis Cluster that is down under the service (issue 12): every master stopped, or the cluster
 * failed (`cluster_state:fail`, one master away for longer than the node time-out). Each request
 * that needs Redis is refused with the JSON 503 of one Redis down (`QUEUE_UNAVAILABLE`) instead of
 * hanging, `/healthz` keeps answering, and when the cluster is back the service resumes by itself:
 * enqueue works again, the jobs accepted before the outage complete, and the load returns to 0.
 *
 * How fast the refusal comes ("within 1 s, as with one node") is a timing, measured by the bench
 * (section 11) with the service's default COMMAND_TIMEOUT_MS; here only the answer is checked, with
 * the same setting and generous time-outs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { enqueueMany, waitForIdle, waitForJobs, type Enqueued } from '../support/jobs.js';
import { startClusterService, type ClusterService } from '../support/cluster-service.js';
import { skipUnlessClusterTools } from '../support/redis-cluster.js';
import type { HttpResult, Service } from '../support/service.js';
import { waitFor } from '../support/wait.js';

const WORKERS = 2;
/** Rounds of requests while the cluster is down: the first meet connections closing, the last none. */
const ROUNDS = 3;

interface ErrorBody {
  readonly error: string;
  readonly code: string;
}

/** Each request that needs Redis, as a client sends it. */
function requestsThatNeedRedis(service: Service, jobId: string): Record<string, () => Promise<HttpResult>> {
  return {
    'POST /enqueue-task': () => service.enqueue({ jobName: 'refused', data: { durationMs: 0 } }),
    'POST /enqueue-tasks': () =>
      service.request('POST', '/enqueue-tasks', {
        body: JSON.stringify({ tasks: [{ jobName: 'refused' }, { jobName: 'refused' }] }),
        headers: { 'content-type': 'application/json' },
      }),
    'GET /jobs/:id': () => service.request('GET', `/jobs/${encodeURIComponent(jobId)}`),
    'GET /jobs': () => service.request('GET', '/jobs?limit=5'),
    'GET /workers': () => service.request('GET', '/workers'),
    'GET /metrics': () => service.request('GET', '/metrics'),
  };
}

/**
 * Every request that needs Redis answers the JSON 503, round after round; /healthz answers too: 503
 * when no node can be reached, and either way on a failed cluster, where a PING (no key, no slot)
 * may go to a live node.
 */
async function assertRefused(service: Service, jobId: string, unreachable: boolean): Promise<void> {
  for (let round = 1; round <= ROUNDS; round += 1) {
    for (const [name, send] of Object.entries(requestsThatNeedRedis(service, jobId))) {
      const response = await send();
      assert.equal(response.status, 503, `round ${round}, ${name}: ${response.text}`);
      assert.match(response.headers.get('content-type') ?? '', /^application\/json/, `${name} answers JSON`);
      assert.equal((response.body as ErrorBody).code, 'QUEUE_UNAVAILABLE', `round ${round}, ${name}`);
    }
    const health = await service.request<{ status: string; redis: boolean }>('GET', '/healthz');
    assert.match(health.headers.get('content-type') ?? '', /^application\/json/, '/healthz answers JSON');
    if (unreachable || health.status !== 200) {
      assert.equal(health.status, 503, health.text);
      assert.deepEqual([health.body.status, health.body.redis], ['unavailable', false]);
    }
  }
}

/**
 * Each worker process reconnects on its own: one answer shows only the process that gave it. Fresh
 * connections land on any process, so many successes in a row show them all back.
 */
async function enqueueWorksEverywhere(service: Service): Promise<Enqueued[]> {
  const accepted: Enqueued[] = [];
  let inARow = 0;
  await waitFor(
    async () => {
      const response = await service.request<Enqueued>('POST', '/enqueue-task', {
        body: JSON.stringify({ jobName: 'after', data: { durationMs: 0 } }),
        headers: { 'content-type': 'application/json', connection: 'close' },
      });
      if (response.status === 202) accepted.push(response.body);
      inARow = response.status === 202 ? inARow + 1 : 0;
      return inARow >= 10;
    },
    { timeoutMs: 90_000, intervalMs: 100, what: 'enqueue to work again on every process' },
  );
  return accepted;
}

/**
 * Waits for the jobs; when they do not get there, the error carries what the service said meanwhile
 * about Redis (refused requests and connection errors, with the process that said it), which is what
 * tells a service stuck on one master from a slow machine.
 */
async function waitForJobsOrSayWhy(service: Service, jobs: readonly Enqueued[]): Promise<void> {
  const from = service.logs.length;
  try {
    await waitForJobs(service, jobs, { timeoutMs: 120_000 });
  } catch (error) {
    const said = service.logs
      .slice(from)
      .filter((line) => line.level !== undefined && line.level >= 40)
      .slice(-20)
      .map((line) => ({ workerId: line.workerId, pid: line.pid, event: line.event, err: messageOf(line.err) }));
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}; the service said: ${JSON.stringify(said)}`,
      {
        cause: error,
      },
    );
  }
}

function messageOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  return String((error as { message?: unknown }).message);
}

describe('a Redis Cluster that is down', { skip: skipUnlessClusterTools(), timeout: 400_000 }, () => {
  let stack: ClusterService;
  before(async () => {
    stack = await startClusterService({
      // AOF, so that masters stopped together come back with their keys; a short node time-out, so
      // that a master away is marked failed, and cleared, in seconds.
      cluster: { appendOnly: true, nodeTimeoutMs: 3_000 },
      workers: WORKERS,
      // The service's default time-out, which the harness raises for the other tests: a refusal must
      // not wait for longer than this, and the requests that wait out a down cluster are the subject.
      // A short job lock: a job whose lock lapsed in the outage is taken back by the stalled checker,
      // which needs two passes, one per lock duration; the default 30 s would only make that slow.
      env: { WORKER_CONCURRENCY: '2', COMMAND_TIMEOUT_MS: '500', LOCK_DURATION_MS: '5000' },
    });
  });
  after(() => stack?.stop());

  const restartAll = async () => {
    const stopped = stack.cluster.nodes.flatMap((_, index) => (stack.cluster.isRunning(index) ? [] : [index]));
    await Promise.all(stopped.map((index) => stack.cluster.startNode(index)));
    await stack.cluster.waitUntilOk(90_000);
  };

  test('every master stopped: JSON 503s, /healthz answers, and the service resumes by itself', async () => {
    // Running and waiting through the outage (2 workers x 2 slots), all accepted before it.
    const before = await enqueueMany(stack.service, 6, 'through-outage', { durationMs: 1_500 });
    const known = before[0] ?? assert.fail('no job accepted');
    await Promise.all(stack.cluster.nodes.map((_, index) => stack.cluster.stopNode(index)));
    try {
      await assertRefused(stack.service, known.jobId, true);
    } finally {
      await restartAll();
    }

    const after = await enqueueWorksEverywhere(stack.service);
    await waitForJobsOrSayWhy(stack.service, [...before, ...after]);
    await waitForIdle(stack.service);
  });

  test('cluster_state:fail (a master away past the node time-out): JSON 503s, then it resumes', async () => {
    const before = await enqueueMany(stack.service, 4, 'through-fail', { durationMs: 500 });
    const known = before[0] ?? assert.fail('no job accepted');
    // The master of a worker's queue: its jobs wait there through the outage.
    const victim = await stack.masterOfQueue('test-0');
    const survivor = (victim + 1) % stack.cluster.nodes.length;
    await stack.cluster.stopNode(victim);
    try {
      await waitFor(async () => (await stack.cluster.clusterInfo(survivor)).cluster_state === 'fail', {
        timeoutMs: 60_000,
        what: 'the surviving masters to mark the cluster failed',
      });
      await assertRefused(stack.service, known.jobId, false);
    } finally {
      await restartAll();
    }

    const after = await enqueueWorksEverywhere(stack.service);
    await waitForJobsOrSayWhy(stack.service, [...before, ...after]);
    await waitForIdle(stack.service);
  });
});
