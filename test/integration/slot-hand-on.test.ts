/**
 * A job's end hands its slot on (ledger/lua/finish-release-n.lua, fairness/releaser.ts `finished`):
 * its reservation ends and the next held job in turn is handed out in the same step, to the worker
 * whose slot freed when no other has more room, and it is in that worker's queue once `finished`
 * resolves, so that BullMQ's completion fetches it. Runs on one Redis and on a Redis Cluster.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLedger, type Ledger } from '../../src/ledger/ledger.js';
import { createGroupLedger, type GroupLedger } from '../../src/ledger/groups.js';
import { createQueueRegistry, type QueueRegistry } from '../../src/queue/queues.js';
import { createReleaser, type Releaser } from '../../src/fairness/releaser.js';
import { HELD_QUEUE, jobIdFor, newToken } from '../../src/contracts/names.js';
import { ledgerKeys } from '../../src/contracts/keys.js';
import { groupOptions, HELD_DELAY_MS } from '../../src/contracts/stored-job.js';
import type { RedisClient } from '../../src/redis/connections.js';
import { captureLogger } from '../support/capture-logger.js';
import { joinWorkers } from '../support/ledger.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';

const WORKERS = ['hand-0', 'hand-1'] as const;

interface Pool {
  readonly ledger: Ledger;
  readonly groups: GroupLedger;
  readonly releaser: Releaser;
  readonly queues: QueueRegistry;
  /** Holds a job of `group` (added to the held queue and put in its group's line); answers its id. */
  hold(group: string): Promise<string>;
  /** Makes a running job on `workerId`; answers its token. */
  run(workerId: string): Promise<string>;
  /** queued + active of `workerId` in the ledger. */
  load(workerId: string): Promise<number>;
}

describe('a job’s end hands its slot on', () => {
  let redis: ModeRedis;
  let connection: RedisClient;
  const queues: QueueRegistry[] = [];

  before(async () => {
    redis = await startTestRedis();
    connection = redis.connect();
  });
  after(async () => {
    await Promise.all(queues.map((each) => each.close()));
    connection?.disconnect();
    await redis?.stop();
  });

  /** Two workers of 2 slots each on a prefix of their own, and a releaser over them. */
  const pool = async (): Promise<Pool> => {
    const prefix = `hand-on-${newToken()}`;
    await joinWorkers(connection, prefix, WORKERS, 2);
    const ledger = createLedger({ redis: connection, prefix, workerTtlMs: 60_000 });
    await ledger.refreshMembers();
    const groups = createGroupLedger({
      redis: connection,
      prefix,
      workerTtlMs: 60_000,
      prefetch: 0,
      groupConcurrency: 0,
      members: () => ledger.memberIds(),
      refreshMembers: () => ledger.refreshMembers(),
    });
    const registry = createQueueRegistry({ connection, prefix });
    queues.push(registry);
    const keys = ledgerKeys(prefix);
    const releaser = createReleaser({
      groups,
      ledger,
      queues: registry,
      connection,
      locationKey: (token) => keys.location(token),
      reservationsKey: (id) => keys.jobs(id),
      locationTtlMs: 60_000,
      logger: captureLogger().logger,
    });
    const held = registry.forWorker(HELD_QUEUE);
    return {
      ledger,
      groups,
      releaser,
      queues: registry,
      async hold(group) {
        const jobId = jobIdFor(WORKERS[0], newToken());
        await held.add('held-job', { group }, { jobId, delay: HELD_DELAY_MS, ...groupOptions(group) });
        const multi = connection.multi();
        groups.holdOn(multi, { jobKey: held.toKey(jobId), jobId, group });
        await multi.exec();
        return jobId;
      },
      async run(workerId) {
        const token = newToken();
        await ledger.markStarted(workerId, token);
        return token;
      },
      async load(workerId) {
        const [queued, active] = await Promise.all([
          connection.hget(keys.queued, workerId),
          connection.hget(keys.active, workerId),
        ]);
        return Number(queued ?? 0) + Number(active ?? 0);
      },
    };
  };

  for (const finishing of WORKERS) {
    test(`on a tie of least load, ${finishing}, whose slot freed, takes the next held job`, async () => {
      const p = await pool();
      const other = WORKERS.find((id) => id !== finishing) ?? '';
      const ending = await p.run(finishing);
      await p.run(finishing);
      await p.run(other);
      const jobId = await p.hold('tenant');

      // After the end both workers run one job: a tie, which the finishing worker wins.
      assert.deepEqual(await p.groups.finishAndRelease(finishing, ending, 8), [{ jobId, workerId: finishing }]);
      assert.equal(await p.load(finishing), 2, 'one running, one handed out');
      assert.equal(await p.load(other), 1);
    });
  }

  test('a repeated end changes nothing, and hands out nothing without room', async () => {
    const p = await pool();
    const ending = await p.run('hand-0');
    await p.run('hand-0');
    await p.run('hand-1');
    await p.run('hand-1');
    const first = await p.hold('tenant');
    await p.hold('tenant');

    assert.deepEqual(await p.groups.finishAndRelease('hand-0', ending, 8), [{ jobId: first, workerId: 'hand-0' }]);
    assert.deepEqual(await p.groups.finishAndRelease('hand-0', ending, 8), [], 'the same end again');
    assert.equal(await p.load('hand-0'), 2);
    assert.equal(await p.load('hand-1'), 2);
    assert.equal((await p.groups.view('tenant')).waiting, 1, 'the second job still waits its turn');
  });

  test('finished resolves with the job in the queue of the worker whose slot freed', async () => {
    const p = await pool();
    const ending = await p.run('hand-1');
    await p.run('hand-1');
    await p.run('hand-0');
    await p.run('hand-0');
    const jobId = await p.hold('tenant');
    assert.equal(p.releaser.handsOn(), false, 'no end seen yet');

    await p.releaser.finished('hand-1', ending);
    assert.equal(await p.queues.forWorker('hand-1').getJobState(jobId), 'waiting');
    assert.equal(p.releaser.handsOn(), true, 'the end handed its slot on');

    // Nothing held any more: the next end hands nothing on, and says so.
    await p.releaser.finished('hand-0', await p.run('hand-0'));
    assert.equal(p.releaser.handsOn(), false);
    await p.releaser.settle();
  });
});
