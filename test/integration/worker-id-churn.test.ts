/**
 * Worker ids come and go, and nothing of the gone ones stays. Fifty deploys of four processes, each
 * deploy under a new HOST_ID (200 worker ids in all), are driven in this process through the ledger's
 * objects on a real Redis (one server or a cluster, test/support/test-redis.ts), with a clock the
 * test moves on instead of sleeping. Each deploy's ids take jobs, run some, and die with one still
 * running; one surviving process's retirer moves what they left to the next deploy's ids, retires
 * them and forgets them, and its periodic prune (process/prune.ts) drops what it held of them.
 *
 * Afterwards a reserve and a cancel carry the live ids only (what Redis was sent, read with
 * MONITOR), the queue registries hold no handle of a forgotten id (nor its listeners on the shared
 * connection), and no key, hash field or set member of a forgotten id is left in Redis.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Worker, type Job } from 'bullmq';
import { Cluster } from 'ioredis';
import { pino } from 'pino';
import { ledgerKeys } from '../../src/contracts/keys.js';
import {
  DELAYED_QUEUE,
  HELD_QUEUE,
  jobIdFor,
  parseJobId,
  queueNameFor,
  workerIdFor,
} from '../../src/contracts/names.js';
import { createLeases, holderName, type Leases } from '../../src/ledger/lease.js';
import { createLedger, type Ledger } from '../../src/ledger/ledger.js';
import { createMoveLedger, readLocation } from '../../src/ledger/moves.js';
import { createJobReader, type JobLocation } from '../../src/jobs/reader.js';
import { createProcessMetrics, type ProcessMetrics } from '../../src/metrics/process-metrics.js';
import { createMover } from '../../src/ownership/mover.js';
import { createRetirer, type Retirer } from '../../src/ownership/retirer.js';
import { pruneWorkerIds } from '../../src/process/prune.js';
import { createQueueRegistry, type QueueRegistry } from '../../src/queue/queues.js';
import { createTransfer } from '../../src/queue/transfer.js';
import type { RedisClient } from '../../src/redis/connections.js';
import { testClock, type TestClock } from '../support/clock.js';
import { keysEverywhere } from '../support/redis-nodes.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';
import { waitFor } from '../support/wait.js';

const DEPLOYS = 50;
const PROCESSES = 4;
const JOBS_PER_DEPLOY = 12;
const CONCURRENCY = 2;
const TTL_MS = 300;
const RETIRE_MS = 400;
/** Finished jobs of a retired id are cleaned at once, so that the id can be forgotten in the same pass. */
const RETENTION = { completed: { ageSeconds: 0 }, failed: { ageSeconds: 0 } };
const logger = pino({ level: 'silent' });

/** One process that lives through every deploy: what a process holds per worker id. */
interface Survivor {
  /** The request connection's ledger, whose reserve and cancel the test watches. */
  readonly ledger: Ledger;
  /** The consumer connection's ledger: the retirer's. */
  readonly jobLedger: Ledger;
  readonly queues: QueueRegistry;
  readonly moveQueues: QueueRegistry;
  readonly leases: Leases;
  readonly retirer: Retirer;
  /** Its metrics, which count every enqueue by the worker it went to. */
  readonly metrics: ProcessMetrics;
  prune(): Promise<void>;
}

function createSurvivor(connection: RedisClient, prefix: string, clock: TestClock): Survivor {
  const owner = holderName('survivor', 9);
  const ledgerOf = () => createLedger({ redis: connection, prefix, workerTtlMs: TTL_MS, clock: clock.now });
  const ledger = ledgerOf();
  const jobLedger = ledgerOf();
  const queues = createQueueRegistry({ connection, prefix });
  const moveQueues = createQueueRegistry({ connection, prefix });
  const leases = createLeases({
    redis: connection,
    prefix,
    instance: 'survivor',
    owner,
    ttlMs: 60_000,
    retireMs: RETIRE_MS,
    clock: clock.now,
  });
  const moves = createMoveLedger({
    redis: connection,
    prefix,
    workerId: 'survivor',
    owner,
    workerTtlMs: TTL_MS,
    locationTtlMs: 3_600_000,
    clock: clock.now,
  });
  const transfer = createTransfer({ redis: connection, queues: moveQueues });
  const retirer = createRetirer({
    redis: connection,
    leases,
    ledger: jobLedger,
    moves,
    queues: moveQueues,
    transfer,
    mover: createMover({ ledger: moves, transfer, onMoved: () => {} }),
    retention: RETENTION,
    onRetired: () => {},
    logger,
  });
  const metrics = createProcessMetrics({
    workerId: 'survivor-0',
    hostId: 'survivor',
    knownJobNames: [],
    pool: { threads: 0, queueSize: 0 },
  });
  return {
    ledger,
    jobLedger,
    queues,
    moveQueues,
    leases,
    retirer,
    metrics,
    prune: () =>
      pruneWorkerIds({
        ledgers: [ledger, jobLedger],
        knownWorkers: () => ledger.knownWorkers(),
        registries: [queues, moveQueues],
        metrics,
      }),
  };
}

/** The ids of one deploy: its processes' ids under the deploy's own HOST_ID. */
function deployIds(deploy: number): readonly string[] {
  return Array.from({ length: PROCESSES }, (_, index) => workerIdFor(`deploy${deploy}`, index));
}

/** What the script calls that Redis runs (EVAL and EVALSHA) carry, read with MONITOR on every master. */
interface ScriptWatch {
  /** The worker ids whose reservation hashes each call that has `arg` among its arguments was given. */
  idsOfCallsWith(arg: string): Promise<string[][]>;
  stop(): void;
}

async function watchScripts(client: RedisClient, connection: RedisClient, prefix: string): Promise<ScriptWatch> {
  const seen: string[][] = [];
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  const monitors = await Promise.all(nodes.map((node) => node.monitor()));
  for (const monitor of monitors) monitor.on('monitor', (_time: string, args: string[]) => seen.push(args));
  const jobsPrefix = ledgerKeys(prefix).jobs('');
  return {
    async idsOfCallsWith(arg) {
      // In the ledger's slot, and sent on the connection the watched calls went on, after them: once
      // MONITOR shows it, it has shown them. A fresh one each time: an earlier call's marker is in
      // `seen` already, and waiting for it would read before the calls made since show.
      const marker = `${prefix}:{sched}:monitor-marker:${randomUUID()}`;
      await connection.exists(marker);
      await waitFor(() => seen.some((args) => args[0] === 'exists' && args[1] === marker), { what: 'MONITOR' });
      return (
        seen
          // A reserve's token comes with its placement ("<token>|<first>|<group>").
          .filter(
            (args) => /^eval(sha)?$/i.test(args[0] ?? '') && args.some((a) => a === arg || a.startsWith(`${arg}|`)),
          )
          .map((args) =>
            args
              .slice(3, 3 + Number(args[2]))
              .filter((key) => key.startsWith(jobsPrefix))
              .map((key) => key.slice(jobsPrefix.length))
              .sort(),
          )
      );
    },
    stop: () => monitors.forEach((monitor) => monitor.disconnect()),
  };
}

/** Everything under `prefix` that belongs to one of `gone`: its keys, and fields or members naming it. */
async function leftoversOf(client: RedisClient, prefix: string, gone: ReadonlySet<string>): Promise<string[]> {
  const found: string[] = [];
  const queueOf = new RegExp(`^${prefix}:tasks\\.\\{(?<id>[^}]+)\\}:`);
  const jobsPrefix = ledgerKeys(prefix).jobs('');
  for (const key of await keysEverywhere(client, `${prefix}:*`)) {
    const owner = queueOf.exec(key)?.groups?.id ?? (key.startsWith(jobsPrefix) ? key.slice(jobsPrefix.length) : '');
    if (gone.has(owner)) {
      found.push(`the key ${key}`);
      continue;
    }
    const type = await client.type(key);
    const members =
      type === 'hash'
        ? await client.hkeys(key)
        : type === 'zset'
          ? await client.zrange(key, 0, -1)
          : type === 'set'
            ? await client.smembers(key)
            : type === 'list'
              ? await client.lrange(key, 0, -1)
              : [];
    for (const member of members) if (gone.has(member)) found.push(`${member} in the ${type} ${key}`);
    // A moved job's location names the ids it went through; it expires with the job, and must.
    if (type === 'string' && (await client.pttl(key)) < 0) {
      const value = (await client.get(key)) ?? '';
      const named = value.split(/[|,]/).filter((part) => gone.has(part));
      if (named.length > 0) found.push(`the string ${key} = ${value}, which never expires`);
    }
  }
  return found;
}

/** A job waiting on a live id that was moved there, with where it has been. */
async function movedJob(
  queues: QueueRegistry,
  live: readonly string[],
  connection: RedisClient,
  prefix: string,
): Promise<{ readonly job: Job; readonly token: string; readonly location: JobLocation }> {
  for (const id of live) {
    for (const job of await queues.forWorker(id).getWaiting()) {
      const token = parseJobId(job.id ?? '')?.token ?? '';
      const location = await readLocation(connection, prefix, token);
      if (location) return { job, token, location };
    }
  }
  assert.fail('no waiting job was moved');
}

describe('worker ids that come and go', () => {
  let redis: ModeRedis;
  let connection: RedisClient;
  before(async () => {
    redis = await startTestRedis();
    connection = redis.connect({ maxRetriesPerRequest: null });
  });
  after(async () => {
    connection.disconnect();
    await redis.stop();
  });

  test('after 200 ids started and retired, a reserve carries the live ones and nothing of the others is left', async () => {
    const prefix = `c${randomUUID().slice(0, 8)}`;
    const clock = testClock();
    // Each queue handle listens on the shared connection (its 'ready' among others) until closed.
    await connection.ping();
    const readyListeners = connection.listenerCount('ready');
    const survivor = createSurvivor(connection, prefix, clock);
    const { ledger, jobLedger } = survivor;
    const forgotten = new Set<string>();
    let enqueued = 0;
    let completed = 0;
    let interrupted = 0;

    /** The deploy's processes take their ids, each as a process does: lease, heartbeat, registration. */
    const join = async (deploy: number): Promise<Leases> => {
      const host = `deploy${deploy}`;
      const leases = createLeases({
        redis: connection,
        prefix,
        instance: host,
        owner: holderName(host, 1),
        ttlMs: TTL_MS,
        retireMs: RETIRE_MS,
        clock: clock.now,
      });
      for (const id of deployIds(deploy)) {
        assert.equal((await leases.acquire(id)).taken, true, `${id} is taken`);
        await leases.renew(id, CONCURRENCY, true);
        await ledger.register({ id, hostId: host, pid: 1, concurrency: CONCURRENCY, startedAt: Date.now() });
      }
      return leases;
    };

    /** Requests place jobs as the dispatcher does: a reservation, then the add on that worker's queue. */
    const enqueue = async (count: number) => {
      const tokens = Array.from({ length: count }, () => randomUUID());
      for (const [i, outcome] of (await ledger.reserveMany(tokens)).entries()) {
        assert.equal(outcome.kind, 'reserved');
        if (outcome.kind !== 'reserved') continue;
        const jobId = jobIdFor(outcome.workerId, tokens[i] ?? '');
        await survivor.queues.forWorker(outcome.workerId).add('churn', {}, { jobId });
        survivor.metrics.jobEnqueued(outcome.workerId, 'churn');
        enqueued += 1;
      }
    };

    /** The id's consumer runs what waits but two jobs, and dies with one of those running. */
    const runAndDie = async (id: string) => {
      const queue = survivor.queues.forWorker(id);
      const consumer = new Worker(queueNameFor(id), null, { connection, prefix, lockDuration: 60_000 });
      try {
        while ((await queue.getWaitingCount()) > 2) {
          const job = await consumer.getNextJob('done', { block: false });
          const token = parseJobId(job?.id ?? '')?.token;
          if (!job || token === undefined) break;
          await jobLedger.markStarted(id, token);
          await job.moveToCompleted('ok', 'done', false);
          await jobLedger.release(id, token);
          completed += 1;
        }
        const running = await consumer.getNextJob('running', { block: false });
        const token = parseJobId(running?.id ?? '')?.token;
        if (token !== undefined) {
          await jobLedger.markStarted(id, token);
          interrupted += 1;
        }
      } finally {
        await consumer.close(true);
      }
    };

    let dying: readonly string[] = [];
    for (let deploy = 0; deploy < DEPLOYS; deploy += 1) {
      const leases = await join(deploy);
      await enqueue(JOBS_PER_DEPLOY);
      for (const id of dying) await runAndDie(id);
      // The old deploy's leases stay expired for the retirement delay; the new one keeps beating.
      clock.advance(TTL_MS + RETIRE_MS + 1);
      for (const id of deployIds(deploy)) assert.equal((await leases.renew(id, CONCURRENCY, true)).held, true);
      for (const id of dying) assert.equal(await survivor.retirer.retire(id), true, `${id} is retired`);
      await survivor.retirer.purge();
      for (const id of dying) forgotten.add(id);
      await survivor.prune();
      dying = deployIds(deploy);
    }
    const live = [...deployIds(DEPLOYS - 1)].sort();
    assert.equal(forgotten.size, (DEPLOYS - 1) * PROCESSES);
    assert.ok(completed > 0 && interrupted > 0, `completed ${completed}, left running ${interrupted}`);

    // A job may finish in the millisecond of its purge, which then keeps it: the next passes clean it.
    await waitFor(
      async () => {
        await survivor.retirer.purge();
        return (await survivor.leases.retired()).size === 0;
      },
      { what: 'every retired id to be forgotten' },
    );
    assert.deepEqual(await ledger.knownWorkers(), live);

    // Every job is accounted for: run, or waiting on a live id, its reservation with it.
    let waiting = 0;
    for (const id of live) {
      const counts = await survivor.queues.forWorker(id).getJobCounts('wait', 'active', 'prioritized', 'delayed');
      assert.equal((counts.active ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0), 0, `${id}'s queue`);
      waiting += counts.wait ?? 0;
    }
    assert.equal(waiting, enqueued - completed, `${enqueued} enqueued, ${completed} completed`);
    const loads = await ledger.snapshot();
    assert.deepEqual(
      loads.map((worker) => worker.id),
      live,
    );
    assert.equal(
      loads.reduce((sum, worker) => sum + worker.queued, 0),
      waiting,
      'the ledger counts the waiting jobs',
    );

    // A moved job that retention removed is looked for in the queues it went through, forgotten ones
    // included: such a read leaves nothing behind (a queue handle writes nothing by being made).
    const reader = createJobReader({
      redis: connection,
      queues: survivor.queues,
      isKnownWorker: (id) => ledger.isKnownWorker(id),
      locate: (token) => readLocation(connection, prefix, token),
    });
    const moved = await movedJob(survivor.queues, live, connection, prefix);
    assert.ok(
      moved.location.movedFrom.some((id) => forgotten.has(id)),
      'it moved away from a forgotten id',
    );
    await moved.job.remove();
    assert.equal(await ledger.release(moved.location.current, moved.token), true);
    assert.equal(await reader.read(moved.job.id ?? ''), undefined);

    // The last retirements left the reserve's list at the prune above; a cancel still covers them
    // until a read sent after they left, the next prune.
    const watch = await watchScripts(redis.client, connection, prefix);
    try {
      const reservedToken = randomUUID();
      const [outcome] = await ledger.reserveMany([reservedToken]);
      assert.equal(outcome?.kind, 'reserved');
      const cancelledToken = randomUUID();
      assert.equal(await ledger.cancel(cancelledToken), false);
      assert.deepEqual(await watch.idsOfCallsWith(reservedToken), [live], 'the reserve carries the live ids');
      assert.deepEqual(
        await watch.idsOfCallsWith(cancelledToken),
        [[...live, ...deployIds(DEPLOYS - 2)].sort()],
        'the cancel also covers the ids retired since the last read',
      );

      await survivor.prune();
      assert.equal(await ledger.cancel(reservedToken), true, 'the cancel finds the reservation on a live id');
      assert.deepEqual(await watch.idsOfCallsWith(reservedToken), [live, live], 'and carries the live ids only');
    } finally {
      watch.stop();
    }

    for (const registry of [survivor.queues, survivor.moveQueues]) {
      assert.deepEqual(
        registry.held().filter((id) => !live.includes(id) && id !== DELAYED_QUEUE && id !== HELD_QUEUE),
        [],
        'no queue handle of a forgotten id',
      );
    }
    const handles = survivor.queues.held().length + survivor.moveQueues.held().length;
    assert.equal(
      connection.listenerCount('ready'),
      readyListeners + handles,
      'the dropped handles let go of the shared connection',
    );
    assert.deepEqual(await leftoversOf(redis.client, prefix, forgotten), [], 'nothing of a forgotten id in Redis');
    const series =
      (await survivor.metrics.registry.getSingleMetric('bullpen_jobs_enqueued_total')?.get())?.values ?? [];
    assert.deepEqual(
      [...new Set(series.map(({ labels }) => String(labels.assigned_worker)))].filter((id) => forgotten.has(id)),
      [],
      'no enqueue series of a forgotten id',
    );
    assert.ok(
      series.some(({ labels }) => live.includes(String(labels.assigned_worker))),
      'the live ones stay',
    );

    await survivor.queues.close();
    await survivor.moveQueues.close();
    assert.equal(connection.listenerCount('ready'), readyListeners);
  });

  test('a queue handle dropped while a request uses it still serves it; the next use gets a new one', async () => {
    const prefix = `d${randomUUID().slice(0, 8)}`;
    const queues = createQueueRegistry({ connection, prefix });
    const handle = queues.forWorker('gone-0');
    const inFlight = handle.add('early', {}, { jobId: jobIdFor('gone-0', 'early') });
    await queues.drop(['gone-0']);
    assert.deepEqual(queues.held(), []);
    await inFlight;
    await handle.add('late', {}, { jobId: jobIdFor('gone-0', 'late') });
    const fresh = queues.forWorker('gone-0');
    assert.notEqual(fresh, handle);
    assert.deepEqual(await fresh.getJobCounts('wait'), { wait: 2 });
    await queues.close();
  });
});
