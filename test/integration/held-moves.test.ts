/**
 * The end of a held job's move (fairness/releaser.ts, ledger/lua/release-done-4.lua): it records where
 * the job went unless a steal recorded where it went since, and a move cut short after its add ends
 * without putting the job back in line. Runs on one Redis and on a Redis Cluster.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLedger, type Ledger } from '../../src/ledger/ledger.js';
import { createGroupLedger, type GroupLedger } from '../../src/ledger/groups.js';
import { createQueueRegistry, type QueueRegistry } from '../../src/queue/queues.js';
import { createReleaser } from '../../src/fairness/releaser.js';
import { HELD_QUEUE, jobIdFor, newToken } from '../../src/contracts/names.js';
import { groupKeys, ledgerKeys } from '../../src/contracts/keys.js';
import { groupOptions, HELD_DELAY_MS } from '../../src/contracts/stored-job.js';
import type { RedisClient } from '../../src/redis/connections.js';
import { captureLogger } from '../support/capture-logger.js';
import { joinWorkers } from '../support/ledger.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';

const PREFIX = 'held-moves';
const WORKER = 'moves-0';

describe('the end of a held job’s move', () => {
  let redis: ModeRedis;
  let connection: RedisClient;
  let ledger: Ledger;
  let groups: GroupLedger;
  let queues: QueueRegistry;

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
  });
  after(async () => {
    await queues?.close();
    connection?.disconnect();
    await redis?.stop();
  });

  const tokenOf = (jobId: string) => jobId.split('~')[1] ?? '';
  const locationKey = (jobId: string) => ledgerKeys(PREFIX).location(tokenOf(jobId));

  test('it records where the job went, unless a steal recorded where it went since', async () => {
    const held = queues.forWorker(HELD_QUEUE);
    const end = async (jobId: string, value: string) => {
      const location = { key: locationKey(jobId), value, ttlMs: 60_000 };
      await groups.moved(
        tokenOf(jobId),
        jobId,
        { jobKey: held.toKey(jobId), delayedKey: held.toKey('delayed') },
        location,
      );
      return connection.get(location.key);
    };
    const fresh = jobIdFor(WORKER, newToken());
    assert.equal(await end(fresh, `${WORKER}|held`), `${WORKER}|held`, 'no location yet: written');

    const routed = jobIdFor('delayed', newToken());
    await connection.set(locationKey(routed), 'held|delayed');
    assert.equal(await end(routed, `${WORKER}|delayed,held`), `${WORKER}|delayed,held`, 'held by the router: replaced');

    const stolen = jobIdFor(WORKER, newToken());
    await connection.set(locationKey(stolen), `thief-0|${WORKER}`);
    assert.equal(await end(stolen, `${WORKER}|held`), `thief-0|${WORKER}`, 'moved on by a steal: kept');
  });

  test('a move cut short after its add (the job ran and its slot went) ends, and the job is not held again', async () => {
    const held = queues.forWorker(HELD_QUEUE);
    const jobId = jobIdFor(WORKER, newToken());
    await held.add('moved-job', { n: 1 }, { jobId, delay: HELD_DELAY_MS, ...groupOptions('tenant') });
    const multi = connection.multi();
    groups.holdOn(multi, { jobKey: held.toKey(jobId), jobId, group: 'tenant' });
    await multi.exec();
    const [released] = await groups.release(8);
    assert.equal(released?.jobId, jobId);
    // The move's add happened, then its process died; the job ran and ended, which freed its slot.
    await queues.forWorker(WORKER).add('moved-job', { n: 1 }, { jobId });
    await ledger.release(WORKER, tokenOf(jobId));

    const { logger } = captureLogger();
    const releaser = createReleaser({
      groups,
      ledger,
      queues,
      connection,
      locationKey: (token) => ledgerKeys(PREFIX).location(token),
      reservationsKey: (id) => ledgerKeys(PREFIX).jobs(id),
      locationTtlMs: 60_000,
      logger,
    });
    assert.equal(await releaser.recover(0, Date.now() + 1_000), 1);
    assert.equal(await held.getJob(jobId), undefined, 'the held copy went');
    assert.equal(await connection.zcard(groupKeys(PREFIX).held), 0, 'not in line again');
    assert.deepEqual(await groups.releasing(), []);
    assert.equal(await connection.get(locationKey(jobId)), `${WORKER}|held`);
  });
});
