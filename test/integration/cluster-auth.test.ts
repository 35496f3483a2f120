/**
 * A Redis Cluster that asks for a password (issue 12: passwords work as they do with REDIS_URL). The
 * seed nodes are given as `redis://:<password>@host:port` URLs; every connection the service makes
 * to every node, found by the seeds or by redirection, authenticates with it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { waitForIdle, waitForJobs, type Enqueued } from '../support/jobs.js';
import { startClusterService, type ClusterService } from '../support/cluster-service.js';
import { skipUnlessClusterTools } from '../support/redis-cluster.js';
import { assertRefusesWithoutPassword } from '../support/redis-nodes.js';

const PASSWORD = 'cluster s3cret';

describe('a Redis Cluster with a password', { skip: skipUnlessClusterTools() }, () => {
  let stack: ClusterService;
  before(async () => {
    stack = await startClusterService({ password: PASSWORD, workers: 2 });
  });
  after(() => stack?.stop());

  test('a node refuses a client without the password', async () => {
    const [first] = stack.cluster.nodes;
    assert.ok(first);
    await assertRefusesWithoutPassword(first);
  });

  test('with the password in the seed URLs, tasks are routed to both workers and complete', async () => {
    const jobs: Enqueued[] = [];
    for (let i = 0; i < 4; i += 1) {
      const response = await stack.service.enqueue<Enqueued>({ jobName: 'behind-a-password', data: { durationMs: 0 } });
      assert.equal(response.status, 202, response.text);
      jobs.push(response.body);
    }
    assert.deepEqual(new Set(jobs.map((job) => job.assignedWorker)), new Set(['test-0', 'test-1']));
    await waitForJobs(stack.service, jobs);
    await waitForIdle(stack.service);
  });
});
