/**
 * A held job's payload (ledger/lua/hold-15.lua): what its add to a worker's queue needs, copied as it
 * is held, so that the release that hands it out answers it and the move reads nothing. A cancel
 * drops it with the job (queue/lua/cancel-8.lua), and so does an unhold: a release that takes a
 * cancelled job before its unhold answers no payload, and the releaser reads the job, finds it
 * finished and gives the slot back. A large job is not copied: its move reads it. Runs on one Redis
 * and on a Redis Cluster.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLedger, type Ledger } from '../../src/ledger/ledger.js';
import { createGroupLedger, type GroupLedger } from '../../src/ledger/groups.js';
import { createQueueRegistry, type QueueRegistry } from '../../src/queue/queues.js';
import { createCancelWaiting, type CancelWaiting } from '../../src/queue/cancel-waiting.js';
import { heldAdd } from '../../src/queue/carried-options.js';
import { HELD_QUEUE, jobIdFor, newToken } from '../../src/contracts/names.js';
import { groupKeys } from '../../src/contracts/keys.js';
import { groupOptions, HELD_DELAY_MS } from '../../src/contracts/stored-job.js';
import type { RedisClient } from '../../src/redis/connections.js';
import { joinWorkers } from '../support/ledger.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';

const PREFIX = 'payloads';
const WORKER = 'pay-0';

describe('held job payloads', () => {
  let redis: ModeRedis;
  let connection: RedisClient;
  let ledger: Ledger;
  let groups: GroupLedger;
  let queues: QueueRegistry;
  let cancelWaiting: CancelWaiting;

  before(async () => {
    redis = await startTestRedis();
    connection = redis.connect();
    await joinWorkers(connection, PREFIX, [WORKER], 8);
    ledger = createLedger({ redis: connection, prefix: PREFIX, workerTtlMs: 60_000 });
    groups = createGroupLedger({
      redis: connection,
      prefix: PREFIX,
      workerTtlMs: 60_000,
      prefetch: 0,
      groupConcurrency: 0,
      members: () => ledger.memberIds(),
      refreshMembers: () => ledger.refreshMembers(),
    });
    queues = createQueueRegistry({ connection, prefix: PREFIX });
    cancelWaiting = createCancelWaiting({ redis: connection, queues, heldPayloads: groupKeys(PREFIX).payloads });
  });
  after(async () => {
    await queues?.close();
    connection?.disconnect();
    await redis?.stop();
  });

  /** A job held as the dispatcher holds one: added to the held queue, then its place in line. */
  const hold = async (data: Record<string, unknown>, priority?: number): Promise<string> => {
    const jobId = jobIdFor(WORKER, newToken());
    const held = queues.forWorker(HELD_QUEUE);
    await held.add('payload-job', data, {
      jobId,
      delay: HELD_DELAY_MS,
      attempts: 3,
      ...(priority === undefined ? {} : { priority }),
      ...groupOptions('tenant'),
    });
    const multi = connection.multi();
    groups.holdOn(multi, { jobKey: held.toKey(jobId), jobId, group: 'tenant', priority });
    await multi.exec();
    return jobId;
  };

  const payloadCount = () => connection.hlen(groupKeys(PREFIX).payloads);

  test("a release answers the held job's add as its read would make it, and keeps no payload after", async () => {
    const jobId = await hold({ text: 'é "quoted" \\ /', n: 7, nested: { list: [1, null, true] } }, 5);
    assert.equal(await payloadCount(), 1);
    const [released] = await groups.release(8);
    assert.equal(released?.jobId, jobId);
    assert.equal(released?.workerId, WORKER);
    assert.ok(released?.payload, 'the release answers a payload');
    const fromPayload = heldAdd(released.payload, jobId);
    const job = await queues.forWorker(HELD_QUEUE).getJob(jobId);
    assert.ok(job);
    assert.equal(fromPayload.name, job.name);
    assert.deepEqual(fromPayload.data, job.data);
    assert.equal(fromPayload.options.timestamp, job.timestamp);
    assert.equal(fromPayload.options.attempts, 3);
    assert.equal(fromPayload.options.priority, 5);
    assert.equal(fromPayload.options.jobId, jobId);
    assert.equal(await payloadCount(), 0, 'the payload leaves with the release');
    await groups.released(released.jobId.split('~')[1] ?? '');
    await ledger.release(WORKER, released.jobId.split('~')[1] ?? '');
  });

  test('a cancel drops the payload: a release before the unhold answers the job without one', async () => {
    const jobId = await hold({ n: 1 });
    assert.equal(await cancelWaiting(HELD_QUEUE, jobId), 'delayed');
    assert.equal(await payloadCount(), 0, 'the cancel took the payload');
    // The release runs between the cancel and its unhold: the job is still in its group's line.
    const [released] = await groups.release(8);
    assert.equal(released?.jobId, jobId);
    assert.equal(released?.payload, undefined, 'no payload: the releaser reads the job and finds it finished');
    const job = await queues.forWorker(HELD_QUEUE).getJob(jobId);
    assert.ok(job?.finishedOn !== undefined);
    const token = jobId.split('~')[1] ?? '';
    await groups.released(token);
    await ledger.release(WORKER, token);
  });

  test('an unhold drops the payload with the place in line', async () => {
    const jobId = await hold({ n: 2 });
    assert.equal(await payloadCount(), 1);
    assert.equal(await cancelWaiting(HELD_QUEUE, jobId), 'delayed');
    assert.equal(await groups.unhold(queues.forWorker(HELD_QUEUE).toKey(jobId)), true);
    assert.equal(await payloadCount(), 0);
    assert.deepEqual(await groups.release(8), [], 'nothing is left to release');
  });

  test('a large job is held without a copy: its release answers no payload', async () => {
    const jobId = await hold({ text: 'x'.repeat(4_096) });
    assert.equal(await payloadCount(), 0, 'nothing copied');
    const [released] = await groups.release(8);
    assert.equal(released?.jobId, jobId);
    assert.equal(released?.payload, undefined, 'the releaser reads the job');
    const token = jobId.split('~')[1] ?? '';
    await groups.released(token);
    await ledger.release(WORKER, token);
  });

  test('a cancel of a job in a worker queue runs as before (its payloads key holds nothing)', async () => {
    const queue = queues.forWorker(WORKER);
    const jobId = jobIdFor(WORKER, newToken());
    await queue.add('payload-job', {}, { jobId });
    assert.equal(await cancelWaiting(WORKER, jobId), 'wait');
    assert.equal((await queue.getJob(jobId))?.failedReason, 'cancelled');
  });
});
