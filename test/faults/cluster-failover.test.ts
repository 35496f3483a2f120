/**
 * A Redis Cluster failover under load (issue 21): 3 masters with a replica each; the master that holds
 * the load ledger's slot (`{sched}`) is killed with SIGKILL while clients enqueue and read, and its
 * replica is promoted. Requests during the switch are refused with the JSON 503 within the time-out
 * (or wait for the promotion and succeed), none hangs; once the service serves again, every request
 * succeeds; every job answered 202 runs exactly once, the jobs running through the kill included, and
 * the ledger comes back to 0.
 *
 * Replication is asynchronous: a write acknowledged by a master that dies before its replica has it
 * is lost, and a 202 with it. So the load pauses just before the kill while the test makes the
 * replica catch up (`WAIT` after a write of its own in the ledger's slot), which makes "every 202 job
 * completes exactly once" a strict assertion; jobs started before the pause still run through the
 * kill. What an unfenced kill can lose is the durable-acceptance setting's subject, not this file's.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { LEDGER_TAG, ledgerKeys } from '../../src/contracts/keys.js';
import { queuedTotal, reservationsLeft, waitForIdle, type Enqueued, type JobView } from '../support/jobs.js';
import { startClusterService, type ClusterService } from '../support/cluster-service.js';
import { skipUnlessClusterTools } from '../support/redis-cluster.js';
import type { HttpResult } from '../support/service.js';
import { waitFor } from '../support/wait.js';

const WORKERS = 3;
/** The service's own default is 500 ms; a shared 2-core machine needs more to answer every request. */
const COMMAND_TIMEOUT_MS = 2_000;
/**
 * A generous bound on any one answer, failover or not: a request that needs the dead master waits at
 * most COMMAND_TIMEOUT_MS for each of its few Redis steps, and a busy machine adds to that.
 */
const ANSWER_BOUND_MS = 2 * COMMAND_TIMEOUT_MS + 5_000;
/** Small, so that the replica is promoted a few seconds after the kill. */
const NODE_TIMEOUT_MS = 2_000;
/** Clients sending requests at once, each pausing between two: a steady, modest load. */
const CLIENTS = 3;
const PACE_MS = 40;
/** The load before the kill, and after the service serves again. */
const LOAD_BEFORE_MS = 2_500;
const LOAD_AFTER_MS = 3_000;
/** Successes in a row, over fresh connections (so over every process), that say it serves again. */
const SERVING_IN_A_ROW = 20;
/** Jobs that start before the kill and finish after it. */
const THROUGH_JOBS = 4;
const THROUGH_MS = 5_000;
/**
 * Longer than a promotion here takes, plus a heartbeat interval: the heartbeats the promoted replica
 * holds date from up to a beat before the kill. With the 5 s default, a promotion 4.3 s after the
 * kill (a loaded CI run) left every heartbeat older than that, and the first enqueues after it were
 * refused with NO_LIVE_WORKER until the processes beat again.
 */
const WORKER_TTL_MS = 20_000;

interface Answer {
  readonly request: string;
  readonly status: number;
  readonly code: string | undefined;
  /** When it was sent (ms since the epoch), and how long its answer took. */
  readonly sentAt: number;
  readonly elapsedMs: number;
}

describe('a Redis Cluster failover under load', { skip: skipUnlessClusterTools(), timeout: 180_000 }, () => {
  let stack: ClusterService;
  before(async () => {
    stack = await startClusterService({
      cluster: { replicas: 1, nodeTimeoutMs: NODE_TIMEOUT_MS },
      workers: WORKERS,
      // Debug logs carry `job.started`, which counts each run of a job.
      env: {
        WORKER_CONCURRENCY: '4',
        COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
        WORKER_TTL_MS: String(WORKER_TTL_MS),
        WORKER_RETIRE_MS: String(2 * WORKER_TTL_MS),
        LOG_LEVEL: 'debug',
      },
    });
  });
  after(() => stack?.stop());

  test('the ledger master killed: 503s, none hanging, then every request serves, every 202 job runs once', async (t) => {
    const { cluster, service } = stack;
    const ledgerKey = ledgerKeys(service.prefix).queued;
    const victimPort = await cluster.masterOf(ledgerKey);
    const killed = cluster.nodes.findIndex((node) => node.port === victimPort);
    assert.ok(killed >= 0, `the ledger's master (port ${victimPort}) is a node of the cluster`);
    const [replica, ...others] = await cluster.replicasOf(killed);
    assert.ok(replica !== undefined && others.length === 0, `node ${killed} has one replica`);
    const promotedPort = cluster.nodes[replica]?.port;

    const accepted: Enqueued[] = [];
    /** The jobs started before the kill that run through it. */
    const through = new Set<string>();
    const answers: Answer[] = [];
    /** When the master was killed, and when the replica was seen serving its slots. */
    let killedAt = Infinity;
    let promotedAt = Infinity;
    let paused = false;
    let stopping = false;

    const timed = async <T>(request: string, send: () => Promise<HttpResult<T>>): Promise<HttpResult<T>> => {
      const startedAt = Date.now();
      const result = await send();
      const code = (result.body as { code?: string } | undefined)?.code;
      answers.push({
        request,
        status: result.status,
        code,
        sentAt: startedAt,
        elapsedMs: Date.now() - startedAt,
      });
      return result;
    };
    // Fresh connections, so that the requests spread over every process, each learning the switch itself.
    const close = { connection: 'close' };
    const json = { 'content-type': 'application/json', ...close };
    const oneRequest = async (n: number): Promise<void> => {
      const data = { i: n, durationMs: n % 20 };
      switch (n % 6) {
        case 0:
        case 1:
        case 2: {
          const result = await timed('POST /enqueue-task', () =>
            service.request<Enqueued>('POST', '/enqueue-task', {
              body: JSON.stringify({ jobName: 'failover', data }),
              headers: json,
            }),
          );
          if (result.status === 202) accepted.push(result.body);
          return;
        }
        case 3: {
          const tasks = [data, { ...data, i: -n }].map((task) => ({ jobName: 'failover', data: task }));
          const result = await timed('POST /enqueue-tasks', () =>
            service.request<{ tasks: Enqueued[] }>('POST', '/enqueue-tasks', {
              body: JSON.stringify({ tasks }),
              headers: json,
            }),
          );
          if (result.status === 202) accepted.push(...result.body.tasks);
          return;
        }
        case 4: {
          const known = accepted[n % Math.max(1, accepted.length)];
          const path = known === undefined ? '/workers' : `/jobs/${encodeURIComponent(known.jobId)}`;
          await timed(`GET ${known === undefined ? path : '/jobs/:id'}`, () =>
            service.request('GET', path, { headers: close }),
          );
          return;
        }
        default:
          await timed('GET /workers', () => service.request('GET', '/workers', { headers: close }));
      }
    };
    let sent = 0;
    const client = async () => {
      while (!stopping) {
        if (paused) {
          await sleep(20);
          continue;
        }
        sent += 1;
        await oneRequest(sent);
        await sleep(PACE_MS);
      }
    };

    const clients = Array.from({ length: CLIENTS }, () => client());
    let servingFrom = -1;
    try {
      await sleep(LOAD_BEFORE_MS);

      // The pause: no request until the kill, and the jobs accepted so far all started.
      paused = true;
      const throughJobs = await Promise.all(
        Array.from({ length: THROUGH_JOBS }, (_, i) =>
          service.enqueue<Enqueued>({ jobName: 'through', data: { i, durationMs: THROUGH_MS } }),
        ),
      );
      for (const result of throughJobs) {
        assert.equal(result.status, 202, result.text);
        accepted.push(result.body);
        through.add(result.body.jobId);
      }
      await waitFor(async () => (await service.workers()).totals.queued === 0, { what: 'every accepted job to start' });
      // A write of the test's own in the ledger's slot, then WAIT: the replica has everything before it.
      const master = new Redis({ host: '127.0.0.1', port: victimPort, lazyConnect: true, maxRetriesPerRequest: 0 });
      try {
        await master.connect();
        await master.set(`${LEDGER_TAG}failover-fence`, String(Date.now()));
        assert.equal(await master.wait(1, 10_000), 1, 'the replica acknowledged every write before the kill');
      } finally {
        master.disconnect();
      }

      await cluster.stopNode(killed, 'SIGKILL');
      killedAt = Date.now();
      paused = false;

      // The replica is promoted, and every running node sees every slot served again.
      const promoted = async () =>
        (await cluster.clusterInfo(replica)).cluster_state === 'ok' &&
        (await cluster.masterOf(ledgerKey)) === promotedPort;
      await waitFor(promoted, {
        timeoutMs: 60_000,
        intervalMs: 100,
        what: `the replica (node ${replica}) to be promoted`,
      });
      promotedAt = Date.now();
      await cluster.waitUntilOk(60_000);

      // Serving again: that many successes in a row in the load's own answers.
      servingFrom = await waitFor(
        () => {
          const from = answers.length - SERVING_IN_A_ROW;
          return from >= 0 && answers.slice(from).every(({ status }) => status < 300) ? from : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 50, what: `${SERVING_IN_A_ROW} requests in a row to succeed` },
      );
      await sleep(LOAD_AFTER_MS);
    } finally {
      paused = false;
      stopping = true;
      await Promise.all(clients);
    }

    const refused = answers.filter(({ status }) => status >= 300);
    const duringSwitch = answers.filter(({ sentAt }) => sentAt >= killedAt && sentAt < promotedAt);
    const slowest = Math.max(...answers.map(({ elapsedMs }) => elapsedMs));
    const since = (at: number) => `+${at - killedAt} ms`;
    t.diagnostic(
      `${answers.length} requests, ${accepted.length} jobs accepted; the replica was promoted ` +
        `${since(promotedAt)} after the kill; sent during the switch: ` +
        duringSwitch.map((a) => `${a.request} at ${since(a.sentAt)}: ${a.status} in ${a.elapsedMs} ms`).join(', ') +
        `; slowest answer ${slowest} ms`,
    );

    assert.equal(await cluster.masterOf(ledgerKey), promotedPort, "the replica serves the ledger's slot");
    assert.ok(duringSwitch.length > 0, 'the load ran through the switch');
    for (const answer of answers) {
      assert.ok(answer.elapsedMs <= ANSWER_BOUND_MS, `${answer.request} answered in ${answer.elapsedMs} ms`);
    }
    for (const answer of refused) {
      const answeredAt = answer.sentAt + answer.elapsedMs;
      assert.ok(answeredAt >= killedAt, `${answer.request} refused before the kill: ${answer.status} ${answer.code}`);
      assert.deepEqual([answer.status, answer.code], [503, 'QUEUE_UNAVAILABLE'], answer.request);
    }
    assert.deepEqual(
      answers.slice(servingFrom).filter(({ status }) => status >= 300),
      [],
      'once it served again, every request succeeded',
    );

    await waitForIdle(service);
    const runs = new Map<string, number>();
    for (const line of service.logs) {
      if (line.event === 'job.started' && line.jobId !== undefined)
        runs.set(line.jobId, (runs.get(line.jobId) ?? 0) + 1);
    }
    for (const job of accepted) {
      const view = await service.request<JobView>('GET', `/jobs/${encodeURIComponent(job.jobId)}`);
      assert.equal(view.status, 200, view.text);
      assert.equal(view.body.state, 'completed', `${job.jobId}: ${view.text}`);
      assert.equal(view.body.attemptsStarted, 1, `${job.jobId} started once, as the queue says`);
      assert.equal(runs.get(job.jobId), 1, `${job.jobId} ran once, as the logs say`);
      if (through.has(job.jobId)) {
        const finishedAt = Date.parse(view.body.timestamps.finishedAt ?? '');
        assert.ok(finishedAt > killedAt, `${job.jobId} ran through the kill`);
      }
    }
    // A request refused part-way may have added jobs of its own (its retry would finish it): they too run once.
    const twice = [...runs].filter(([, count]) => count !== 1);
    assert.deepEqual(twice, [], 'no job ran twice');
    t.diagnostic(`${runs.size - accepted.length} jobs ran that a refused request had added`);

    // The ledger is exact again: no reservation, nothing queued or running (a reconcile pass may repair it).
    await waitFor(
      async () =>
        (await reservationsLeft(cluster.client, service.prefix)) === 0 &&
        (await queuedTotal(cluster.client, service.prefix)) === 0,
      { timeoutMs: 60_000, intervalMs: 500, what: 'the ledger to come back to 0' },
    );
    const active = await cluster.client.hgetall(ledgerKeys(service.prefix).active);
    assert.deepEqual(
      Object.values(active).filter((count) => Number(count) !== 0),
      [],
      'nothing runs as the ledger says',
    );
  });
});
