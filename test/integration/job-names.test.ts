/**
 * The job names a task may have: those with a handler file, the dummy's example (`videoProcessing`)
 * and the names of DUMMY_JOB_NAMES. Any other is refused with 422 UNKNOWN_JOB_NAME, which lists the
 * known names, and nothing is enqueued, reserved or claimed: a typo no longer runs the dummy and
 * reads `completed`. A batch names each unknown entry by its index, as validation errors do. In-process
 * against a real Redis for the answers, then the real service for the jobs that run.
 *
 * Single mode only: the refusal comes before any Redis command, and the jobs that run are the dummy's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { DUMMY_EXAMPLE_JOB_NAME } from '../../src/execution/handlers.js';
import { startApp, type StartedApp } from '../support/in-process-app.js';
import { jobKeys, queuedTotal, reservationsLeft, waitForJobs, type Enqueued } from '../support/jobs.js';
import { joinWorkers } from '../support/ledger.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { serviceSuite } from '../support/service-suite.js';

const logger = pino({ level: 'silent' });
const config = loadConfig({ QUEUE_PREFIX: 'job-names' });
const LISTED = 'resize-image';
/** The handler file the service ships (workers/handlers/sha256.ts). */
const HANDLER_FILE = 'sha256';
const KNOWN = [LISTED, HANDLER_FILE, DUMMY_EXAMPLE_JOB_NAME].sort();

interface Refusal {
  readonly error: string;
  readonly code: string;
  readonly details: {
    readonly unknownJobNames: readonly { path: string; jobName: string }[];
    readonly knownJobNames: readonly string[];
  };
}

describe('job names without a handler file', () => {
  describe(`in-process, with DUMMY_JOB_NAMES=${LISTED}`, () => {
    let redis: TestRedis;
    /** Takes only the known names. */
    let app: StartedApp;
    /** The same deployment configured with `*`: it makes jobs whose names `app` does not know. */
    let open: StartedApp;

    const post = async (on: StartedApp, path: string, body: unknown, headers: Record<string, string> = {}) => {
      const response = await fetch(`${on.url}${path}`, {
        method: path.endsWith('/retry') || path.startsWith('/enqueue') ? 'POST' : 'DELETE',
        headers: { 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(20_000),
      });
      return { status: response.status, body: await response.json() };
    };
    /** What Redis holds of the deployment's jobs: job hashes, ledger counts, reservations. */
    const held = async () => ({
      jobs: (await jobKeys(redis.client, config.prefix)).length,
      queued: await queuedTotal(redis.client, config.prefix),
      reservations: await reservationsLeft(redis.client, config.prefix),
    });

    before(async () => {
      redis = await startRedis();
      const options = { prefix: config.prefix, logger, workerTtlMs: 60_000 };
      app = await startApp(redis.url, { ...options, dummyJobNames: [LISTED] });
      open = await startApp(redis.url, { ...options, dummyJobNames: '*' });
      await joinWorkers(redis.client, config.prefix, ['job-names-0', 'job-names-1']);
    });

    after(async () => {
      await open?.close();
      await app?.close();
      await redis?.stop();
    });

    test('POST /enqueue-task of an unknown name: 422 listing the known names; nothing enqueued or claimed', async () => {
      const before = await held();
      const key = 'job-names-typo';
      const response = await post(app, '/enqueue-task', { jobName: 'resize_image' }, { 'idempotency-key': key });
      assert.equal(response.status, 422, JSON.stringify(response.body));
      const refusal = response.body as Refusal;
      assert.equal(refusal.code, 'UNKNOWN_JOB_NAME');
      assert.deepEqual(refusal.details.unknownJobNames, [{ path: 'jobName', jobName: 'resize_image' }]);
      assert.deepEqual(refusal.details.knownJobNames, KNOWN);
      assert.match(refusal.error, /resize_image/);
      assert.deepEqual(await held(), before, 'nothing enqueued, counted or reserved');
      assert.equal(await redis.client.exists(`${config.prefix}:idempotency:${key}`), 0, 'the key was not claimed');
    });

    test('POST /enqueue-tasks names each unknown entry by its index, and enqueues none of the batch', async () => {
      const before = await held();
      const tasks = [
        { jobName: DUMMY_EXAMPLE_JOB_NAME },
        { jobName: 'typo-1' },
        { jobName: LISTED },
        { jobName: 'typo-2' },
      ];
      const response = await post(app, '/enqueue-tasks', { tasks });
      assert.equal(response.status, 422, JSON.stringify(response.body));
      const refusal = response.body as Refusal;
      assert.equal(refusal.code, 'UNKNOWN_JOB_NAME');
      assert.deepEqual(refusal.details.unknownJobNames, [
        { path: 'tasks.1.jobName', jobName: 'typo-1' },
        { path: 'tasks.3.jobName', jobName: 'typo-2' },
      ]);
      assert.deepEqual(refusal.details.knownJobNames, KNOWN);
      assert.deepEqual(await held(), before, 'the whole batch was refused');
    });

    test('the dummy example, the listed names and the handler files are accepted, alone and in a batch', async () => {
      for (const jobName of KNOWN) {
        const response = await post(app, '/enqueue-task', { jobName });
        assert.equal(response.status, 202, `${jobName}: ${JSON.stringify(response.body)}`);
      }
      const batch = await post(app, '/enqueue-tasks', { tasks: KNOWN.map((jobName) => ({ jobName })) });
      assert.equal(batch.status, 202, JSON.stringify(batch.body));
    });

    test('a retry of a job whose name is not known here is refused the same way', async () => {
      const made = await post(open, '/enqueue-task', { jobName: 'legacy-name' });
      assert.equal(made.status, 202, 'a service configured with * takes any name');
      const { jobId } = made.body as { jobId: string };
      assert.equal((await post(open, `/jobs/${jobId}`, undefined)).status, 200, 'cancelled, so it can be retried');
      const before = await held();
      const retried = await post(app, `/jobs/${jobId}/retry`, undefined);
      assert.equal(retried.status, 422, JSON.stringify(retried.body));
      assert.deepEqual((retried.body as Refusal).details.unknownJobNames, [
        { path: 'jobName', jobName: 'legacy-name' },
      ]);
      assert.deepEqual(await held(), before);
      assert.equal((await post(open, `/jobs/${jobId}/retry`, undefined)).status, 202, 'where the name is known, it is');
    });
  });

  describe(`the service, with DUMMY_JOB_NAMES=${LISTED}`, () => {
    const suite = serviceSuite(startRedis, (redis) => ({
      redisUrl: redis.url,
      workers: 1,
      env: { DUMMY_JOB_NAMES: LISTED },
    }));

    test('the dummy example and the listed name run to completion; an unknown name is refused', async () => {
      const { service } = suite;
      const jobs: Enqueued[] = [];
      for (const jobName of [DUMMY_EXAMPLE_JOB_NAME, LISTED]) {
        const response = await service.enqueue<Enqueued>({ jobName, data: { durationMs: 0 } });
        assert.equal(response.status, 202, response.text);
        jobs.push(response.body);
      }
      const views = await waitForJobs(service, jobs);
      assert.deepEqual(
        views.map((view) => view.result?.jobName),
        [DUMMY_EXAMPLE_JOB_NAME, LISTED],
        'each ran the dummy, which returns its name',
      );
      const refused = await service.enqueue<Refusal>({ jobName: 'resize_image', data: { durationMs: 0 } });
      assert.equal(refused.status, 422, refused.text);
      assert.equal(refused.body.code, 'UNKNOWN_JOB_NAME');
      assert.deepEqual(refused.body.details.knownJobNames, KNOWN);
    });
  });
});
