/**
 * GET /jobs in-process against a real Redis (one server or a cluster, test/support/test-redis.ts)
 * with three live worker ids, jobs enqueued over HTTP: every enqueue writes its index entry; the
 * listing is newest first across every worker's queue, each item as GET /jobs/:id gives it; paging
 * with a cursor visits every job once, ties and jobs added meanwhile included; the filters (state,
 * cancelled included, worker, job name) select what they say, the states made by a real BullMQ
 * Worker; entries of removed jobs are skipped and dropped; a filtered page reads a bounded number of
 * entries; bad queries are refused with 400 and change nothing. The lister is also driven directly,
 * with a real reader, for what HTTP cannot show: reads per page, jobs that moved between queues, and
 * the sweep that trims old entries.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Worker, type Job } from 'bullmq';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { ledgerKeys } from '../../src/contracts/keys.js';
import { createLedger } from '../../src/ledger/ledger.js';
import { createMoveLedger } from '../../src/ledger/moves.js';
import { decodeCursor, encodeCursor } from '../../src/jobs/index-cursor.js';
import { jobIndexKey } from '../../src/contracts/keys.js';
import { createJobLister, MAX_SCAN, scanBudget } from '../../src/jobs/lister.js';
import { createJobReader, type JobReader, type JobView } from '../../src/jobs/reader.js';
import { parseJobId, queueNameFor } from '../../src/contracts/names.js';
import { startApp, type StartedApp } from '../support/in-process-app.js';
import { joinWorkers } from '../support/ledger.js';
import { flushEverywhere } from '../support/redis-nodes.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';

const logger = pino({ level: 'silent' });
const config = loadConfig({ QUEUE_PREFIX: 'job-list-test' });
const INDEX = jobIndexKey(config.prefix);
const WORKERS = ['list-0', 'list-1', 'list-2'];
const API_KEY = 'a-long-enough-list-key-0123456789';

interface Enqueued {
  readonly jobId: string;
  readonly assignedWorker: string;
}

interface Page {
  readonly jobs: JobView[];
  readonly nextCursor: string | null;
}

interface Refusal {
  readonly error: string;
  readonly code: string;
  readonly details?: { path: string; message: string }[];
}

let redis: ModeRedis;
let app: StartedApp;

async function post<T>(path: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${app.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  assert.equal(response.status, 202, await response.clone().text());
  return (await response.json()) as T;
}

const enqueue = (jobName: string, options?: Record<string, number>) =>
  post<Enqueued>('/enqueue-task', { jobName, data: {}, ...(options ? { options } : {}) });

async function enqueueBatch(count: number, jobName: string): Promise<Enqueued[]> {
  const tasks = Array.from({ length: count }, () => ({ jobName, data: {} }));
  return (await post<{ tasks: Enqueued[] }>('/enqueue-tasks', { tasks })).tasks;
}

/** One at a time, a few ms apart, so that each has an enqueue time of its own. */
async function enqueueApart(count: number, jobName: string): Promise<Enqueued[]> {
  const sent: Enqueued[] = [];
  for (let i = 0; i < count; i += 1) {
    sent.push(await enqueue(jobName));
    await sleep(3);
  }
  return sent;
}

async function get<T>(path: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${app.url}${path}`, { headers, signal: AbortSignal.timeout(20_000) });
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    body: (await response.json()) as T,
  };
}

async function list(query = ''): Promise<Page> {
  const response = await get<Page>(`/jobs${query === '' ? '' : `?${query}`}`);
  assert.equal(response.status, 200, JSON.stringify(response.body));
  return response.body;
}

/** Every page of a listing, following the cursors. */
async function listAll(query: string): Promise<Page[]> {
  const pages: Page[] = [];
  let cursor: string | null = null;
  do {
    const page = await list(`${query}${cursor === null ? '' : `&cursor=${cursor}`}`);
    pages.push(page);
    cursor = page.nextCursor;
    assert.ok(pages.length < 1_000, 'the listing ends');
  } while (cursor !== null);
  return pages;
}

const ids = (jobs: readonly { jobId: string }[]) => jobs.map((job) => job.jobId);
const sorted = (values: readonly string[]) => [...values].sort();
const indexed = async () => redis.client.zrange(INDEX, 0, -1);

/** Entries of the index newer than a cursor's position, the position included: what a page went past. */
async function consumed(cursor: string, after?: string): Promise<number> {
  const to = decodeCursor(cursor);
  assert.ok(to, 'the cursor decodes');
  const rankOf = async (member: string) => {
    const rank = await redis.client.zrevrank(INDEX, member);
    assert.notEqual(rank, null, 'the position is still in the index');
    return rank as number;
  };
  const from = after === undefined ? -1 : await rankOf((decodeCursor(after) as { member: string }).member);
  return (await rankOf(to.member)) - from;
}

/** A reader over the test's Redis, moved jobs found through their location records. */
function realReader(): JobReader {
  const ledger = createLedger({ redis: redis.client, prefix: config.prefix, workerTtlMs: 60_000 });
  const moves = createMoveLedger({
    redis: redis.client,
    prefix: config.prefix,
    workerId: 'list-test',
    owner: 'list-test',
    workerTtlMs: 60_000,
    locationTtlMs: 60_000,
  });
  return createJobReader({
    redis: app.connection,
    queues: app.queues,
    isKnownWorker: (id) => ledger.isKnownWorker(id),
    locate: (token) => moves.location(token),
  });
}

/** The real reader, counting the jobs it reads, and those it is asked whether they are gone. */
function countingReader(): { reader: Pick<JobReader, 'read' | 'gone'>; reads: () => number; asked: () => number } {
  const reader = realReader();
  let reads = 0;
  let asked = 0;
  return {
    reader: {
      read(jobId) {
        reads += 1;
        return reader.read(jobId);
      },
      gone(jobIds) {
        asked += jobIds.length;
        return reader.gone(jobIds);
      },
    },
    reads: () => reads,
    asked: () => asked,
  };
}

describe('GET /jobs', () => {
  before(async () => {
    redis = await startTestRedis();
    app = await startApp(redis.target, { prefix: config.prefix, logger, workerTtlMs: 60_000 });
  });

  beforeEach(async () => {
    await flushEverywhere(redis.client);
    await joinWorkers(redis.client, config.prefix, WORKERS);
  });

  after(async () => {
    await app?.close();
    await redis?.stop();
  });

  test('POST /enqueue-task and POST /enqueue-tasks write each job in the index at its enqueue time', async () => {
    const single = await enqueue('one');
    const replayable = await post<Enqueued>('/enqueue-task', { jobName: 'keyed' }, { 'idempotency-key': 'list-1' });
    const batch = await enqueueBatch(5, 'many');
    const keyedBatch = (
      await post<{ tasks: Enqueued[] }>(
        '/enqueue-tasks',
        { tasks: [{ jobName: 'k' }] },
        { 'idempotency-key': 'list-2' },
      )
    ).tasks;
    const all = [single, replayable, ...batch, ...keyedBatch];
    assert.deepEqual(sorted(await indexed()), sorted(ids(all)));
    for (const { jobId } of all) {
      const view = (await get<JobView>(`/jobs/${jobId}`)).body;
      assert.equal(Number(await redis.client.zscore(INDEX, jobId)), Date.parse(view.timestamps.enqueuedAt ?? ''));
    }
  });

  test('lists newest first across every worker, each item as GET /jobs/:id answers it', async () => {
    const sent = await enqueueApart(9, 'ordered');
    assert.equal(new Set(sent.map((job) => job.assignedWorker)).size, WORKERS.length, 'spread over every worker');
    const page = await list();
    assert.deepEqual(ids(page.jobs), ids(sent).reverse());
    assert.equal(page.nextCursor, null);
    for (const item of page.jobs) assert.deepEqual(item, (await get<JobView>(`/jobs/${item.jobId}`)).body);
  });

  test('paging with limit and cursor visits every job once, ties and jobs added meanwhile included', async () => {
    // Batches share enqueue milliseconds: page boundaries fall between jobs of equal score.
    const sent = [
      ...(await enqueueBatch(25, 'tied')),
      ...(await enqueueApart(5, 'apart')),
      ...(await enqueueBatch(10, 'tied')),
    ];
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    const added: Enqueued[] = [];
    do {
      const page = await list(`limit=7${cursor === null ? '' : `&cursor=${cursor}`}`);
      pages += 1;
      seen.push(...ids(page.jobs));
      if (page.nextCursor !== null) assert.equal(page.jobs.length, 7, 'a full page while more follow');
      cursor = page.nextCursor;
      // Jobs enqueued while a client pages are newer than its cursor: they never show up twice.
      if (pages === 2) added.push(...(await enqueueBatch(4, 'late')));
    } while (cursor !== null);
    assert.equal(pages, Math.ceil(sent.length / 7));
    assert.equal(new Set(seen).size, seen.length, 'no duplicates');
    assert.deepEqual(sorted(seen), sorted(ids(sent)), 'every job, and only the ones older than the first page');
    // Newest first, ties in the index's own order.
    const order = await redis.client.zrevrange(INDEX, 0, -1);
    assert.deepEqual(
      seen,
      order.filter((id) => !ids(added).includes(id)),
    );
    assert.deepEqual(ids((await list('limit=500')).jobs), order, 'the late jobs are on a fresh first page');

    // A position need not be an entry: between ties, or where a dropped entry was, it still names
    // one place. Byte order puts '!' before every job id and '~' after every one.
    const scores = await redis.client.zrevrange(INDEX, 0, -1, 'WITHSCORES');
    const counts = new Map<number, number>();
    for (let i = 1; i < scores.length; i += 2) counts.set(Number(scores[i]), (counts.get(Number(scores[i])) ?? 0) + 1);
    const [[tiedScore]] = [...counts.entries()].sort((a, b) => b[1] - a[1]) as [[number, number]];
    const ties = await redis.client.zrangebyscore(INDEX, tiedScore, tiedScore);
    assert.ok(ties.length > 1, 'a batch shares one millisecond');
    const from = (member: string) => encodeCursor({ score: tiedScore, member });
    const older = await redis.client.zrevrangebyscore(INDEX, `(${tiedScore}`, '-inf');
    assert.deepEqual(ids((await list(`limit=500&cursor=${from('~')}`)).jobs), [...[...ties].reverse(), ...older]);
    assert.deepEqual(ids((await list(`limit=500&cursor=${from('!')}`)).jobs), older);
    const [, middle] = [...ties].reverse() as [string, string];
    await app.queues.forWorker(parseJobId(middle)?.workerId ?? '').remove(middle);
    await redis.client.zrem(INDEX, middle);
    assert.deepEqual(
      ids((await list(`limit=500&cursor=${from(middle)}`)).jobs),
      [...[...ties].reverse().slice(2), ...older],
      'from the place of an entry that is gone',
    );
  });

  test('filters by state (cancelled included), by worker, by job name, and by all at once', async () => {
    // Jobs that a BullMQ Worker will take and finish one way or another, by name.
    const plan: [string, Record<string, number> | undefined][] = [
      ['to-complete', undefined],
      ['to-fail', { attempts: 1 }],
      ['to-cancel', { attempts: 1 }],
      ['to-run', undefined],
      ['to-delay', { attempts: 2, backoffMs: 600_000 }],
    ];
    const taken = new Map<string, Enqueued>();
    for (const [name, options] of plan) taken.set(name, await enqueue(name, options));
    const connection = redis.connect({ maxRetriesPerRequest: null });
    const consumers = WORKERS.map(
      (id) => new Worker(queueNameFor(id), null, { connection, prefix: config.prefix, autorun: false }),
    );
    try {
      const outcomes: Record<string, (job: Job, token: string) => Promise<unknown>> = {
        'to-complete': (job, token) => job.moveToCompleted({ ok: true }, token, false),
        'to-fail': (job, token) => job.moveToFailed(new Error('boom'), token, false),
        'to-cancel': (job, token) => job.moveToFailed(new Error('cancelled'), token, false),
        'to-run': () => Promise.resolve(),
        'to-delay': (job, token) => job.moveToFailed(new Error('again later'), token, false),
      };
      let took = 0;
      for (const [i, consumer] of consumers.entries()) {
        const token = `list-token-${i}`;
        for (let job = await consumer.getNextJob(token, { block: false }); job;) {
          took += 1;
          await outcomes[job.name]?.(job, token);
          job = await consumer.getNextJob(token, { block: false });
        }
      }
      assert.equal(took, taken.size);
      const waiting = await enqueueApart(3, 'idle');
      const prioritized = [await enqueue('urgent', { priority: 5 }), await enqueue('urgent', { priority: 7 })];
      const byName = (name: string) => [(taken.get(name) as Enqueued).jobId];

      const expected: Record<string, string[]> = {
        waiting: ids(waiting),
        prioritized: ids(prioritized),
        delayed: byName('to-delay'),
        active: byName('to-run'),
        completed: byName('to-complete'),
        failed: byName('to-fail'),
        cancelled: byName('to-cancel'),
      };
      for (const [state, want] of Object.entries(expected)) {
        const { jobs, nextCursor } = await list(`state=${state}`);
        assert.deepEqual(sorted(ids(jobs)), sorted(want), state);
        assert.ok(
          jobs.every((job) => job.state === state),
          state,
        );
        assert.equal(nextCursor, null);
      }
      const [cancelled] = (await list('state=cancelled')).jobs;
      assert.equal(cancelled?.failedReason, 'cancelled');

      const everyJob = [...taken.values(), ...waiting, ...prioritized];
      for (const worker of WORKERS) {
        const { jobs } = await list(`worker=${worker}`);
        const want = everyJob.filter((job) => job.assignedWorker === worker);
        assert.deepEqual(sorted(ids(jobs)), sorted(ids(want)), worker);
      }
      assert.deepEqual(sorted(ids((await list('jobName=urgent')).jobs)), sorted(ids(prioritized)));
      assert.deepEqual(ids((await list('jobName=nothing-by-that-name')).jobs), []);

      const [first] = waiting as [Enqueued];
      const all = await listAll(`state=waiting&worker=${first.assignedWorker}&jobName=idle&limit=1`);
      assert.deepEqual(
        sorted(all.flatMap((page) => ids(page.jobs))),
        sorted(ids(waiting.filter((job) => job.assignedWorker === first.assignedWorker))),
      );
    } finally {
      await Promise.all(consumers.map((consumer) => consumer.close(true)));
      connection.disconnect();
    }
  });

  test('entries of jobs removed from Redis are skipped, and dropped from the index', async () => {
    const sent = await enqueueApart(10, 'kept');
    const removed = sent.filter((_, i) => i % 3 === 1);
    for (const job of removed) assert.equal(await app.queues.forWorker(job.assignedWorker).remove(job.jobId), 1);
    assert.equal(await redis.client.zcard(INDEX), sent.length, 'the index still names them');
    // Young entries without a job are only skipped (their job may be on its way): a job is written
    // after its entry. So a first listing drops nothing…
    await listAll('limit=6');
    assert.equal(await redis.client.zcard(INDEX), sent.length, 'young entries are kept');
    // …and, with every entry made two minutes older (their order kept), the gone ones are dropped.
    for (const job of sent) await redis.client.zincrby(INDEX, -120_000, job.jobId);

    const page = await list('limit=6');
    const kept = sent.filter((job) => !removed.includes(job));
    assert.deepEqual(ids(page.jobs), ids(kept).reverse().slice(0, 6), 'a full page, the gone ones skipped');
    const rest = await listAll('limit=6');
    assert.deepEqual(
      rest.flatMap((each) => ids(each.jobs)),
      ids(kept).reverse(),
    );
    assert.deepEqual(sorted(await indexed()), sorted(ids(kept)), 'the entries of the removed jobs are gone');
  });

  test('a filtered page reads a bounded number of entries and returns a cursor to go on', async () => {
    const [needle] = (await enqueueApart(1, 'needle')) as [Enqueued];
    await sleep(3);
    const hay = [...(await enqueueBatch(100, 'hay')), ...(await enqueueBatch(50, 'hay'))];
    const limit = 10;
    const budget = scanBudget(limit);
    assert.ok(budget < hay.length);

    const first = await list(`jobName=needle&limit=${limit}`);
    assert.deepEqual(first.jobs, [], 'fewer than limit, here none…');
    assert.notEqual(first.nextCursor, null, '…while more may follow');
    assert.equal(await consumed(first.nextCursor as string), budget, 'it went past exactly its budget of entries');

    let pages = 1;
    let cursor = first.nextCursor;
    let found: JobView[] = [];
    while (cursor !== null) {
      const page = await list(`jobName=needle&limit=${limit}&cursor=${cursor}`);
      pages += 1;
      if (page.nextCursor !== null) assert.ok((await consumed(page.nextCursor, cursor)) <= budget);
      found = [...found, ...page.jobs];
      cursor = page.nextCursor;
    }
    assert.deepEqual(ids(found), [needle.jobId]);
    assert.equal(pages, Math.ceil((hay.length + 1) / budget));
  });

  test('the lister reads at most its budget of jobs per page, capped whatever the limit', async () => {
    await enqueueBatch(1, 'needle');
    await sleep(3);
    for (let i = 0; i < 3; i += 1) await enqueueBatch(400, 'hay');
    const { reader, reads } = countingReader();
    const lister = createJobLister({
      redis: app.connection,
      indexKey: INDEX,
      reader,
      sweepAfterMs: 60_000,
      sweepIntervalMs: 1_000,
    });
    const page = await lister.list({ filter: { jobName: 'needle' }, limit: 500 });
    assert.equal(scanBudget(500), MAX_SCAN);
    assert.deepEqual(page.jobs, []);
    assert.equal(page.scanned, MAX_SCAN);
    assert.equal(reads(), MAX_SCAN, 'one read per entry, none more');
    const unfiltered = await lister.list({ filter: {}, limit: 20 });
    assert.equal(unfiltered.jobs.length, 20);
    assert.equal(reads(), MAX_SCAN + 20, 'an unfiltered page reads what it returns');
  });

  test('a job that moved to another queue is listed under the worker that holds it now', async () => {
    const [job] = (await enqueueApart(1, 'mover')) as [Enqueued];
    const target = WORKERS.find((id) => id !== job.assignedWorker) as string;
    const source = app.queues.forWorker(job.assignedWorker);
    const original = await source.getJob(job.jobId);
    assert.ok(original);
    // What a move leaves: the job under the same id in the target's queue, and its location record.
    await app.queues.forWorker(target).add(original.name, original.data as unknown, {
      jobId: job.jobId,
      timestamp: original.timestamp,
    });
    await source.remove(job.jobId);
    const { token } = parseJobId(job.jobId) as { token: string };
    await redis.client.set(ledgerKeys(config.prefix).location(token), `${target}|${job.assignedWorker}`);

    const lister = createJobLister({
      redis: app.connection,
      indexKey: INDEX,
      reader: realReader(),
      sweepAfterMs: 60_000,
      sweepIntervalMs: 1_000,
    });
    const page = await lister.list({ filter: { worker: target }, limit: 10 });
    assert.deepEqual(ids(page.jobs), [job.jobId]);
    assert.deepEqual(page.jobs[0]?.movedFrom, [job.assignedWorker]);
    assert.deepEqual((await lister.list({ filter: { worker: job.assignedWorker }, limit: 10 })).jobs, []);
    assert.equal(page.dropped, 0);
    assert.equal(await redis.client.zscore(INDEX, job.jobId), String(original.timestamp), 'its entry stays');
    // The sweep finds it where it went too, not gone; once removed there as well, it is.
    const reader = realReader();
    assert.deepEqual(await reader.gone([job.jobId]), [], 'a moved job is not gone');
    await app.queues.forWorker(target).remove(job.jobId);
    assert.deepEqual(
      await reader.gone([job.jobId, 'not-a-job-id']),
      ['not-a-job-id', job.jobId],
      'and so is no job id',
    );
  });

  test('the sweep drops old entries of removed jobs, steps over live ones, and leaves young ones', async () => {
    const HOUR = 3_600_000;
    const sent = await enqueueApart(10, 'swept');
    // Ages as the index sees them: the first eight are old, the last two young.
    const now = Date.now();
    for (const [i, job] of sent.entries()) {
      if (i < 8) await redis.client.zadd(INDEX, 'XX', now - 2 * HOUR + i, job.jobId);
    }
    // Old: three live (a long backlog), four gone, one live. Young: one gone, one live.
    const gone = [3, 4, 5, 6, 8].map((i) => sent[i] as Enqueued);
    for (const job of gone) await app.queues.forWorker(job.assignedWorker).remove(job.jobId);

    const { reader, reads, asked } = countingReader();
    const sweeper = (intervalMs: number) =>
      createJobLister({
        redis: app.connection,
        indexKey: INDEX,
        reader,
        sweepAfterMs: HOUR,
        sweepIntervalMs: intervalMs,
        sweepBatch: 3,
        sweepBatches: 1,
      });
    const lister = sweeper(1);
    const passes = [];
    for (let i = 0; i < 3; i += 1) {
      await redis.client.del(`${INDEX}:sweep-lock`);
      passes.push(await lister.sweep());
    }
    assert.deepEqual(passes, [
      { ran: true, examined: 3, dropped: 0 },
      { ran: true, examined: 3, dropped: 3 },
      { ran: true, examined: 2, dropped: 1 },
    ]);
    assert.equal(asked(), 8 + 4, 'each old entry asked about once, each gone one twice');
    assert.equal(reads(), 0, "no job's state is read: a live job is only found to exist");
    const young = sent.slice(8);
    const liveOld = [0, 1, 2, 7].map((i) => sent[i] as Enqueued);
    assert.deepEqual(sorted(await indexed()), sorted(ids([...liveOld, ...young])), 'live and young entries stay');

    // After reaching the young entries it starts again from the oldest.
    await redis.client.del(`${INDEX}:sweep-lock`);
    assert.deepEqual(await lister.sweep(), { ran: true, examined: 3, dropped: 0 });
    // One process sweeps per interval.
    const slow = sweeper(60_000);
    await redis.client.del(`${INDEX}:sweep-lock`);
    assert.equal((await slow.sweep()).ran, true);
    assert.deepEqual(await slow.sweep(), { ran: false, examined: 0, dropped: 0 });
  });

  test('bad queries answer 400 JSON and change nothing', async () => {
    const sent = await enqueueApart(3, 'stay');
    // A stale entry (old enough) that a listing would drop: a refused query must not.
    await app.queues.forWorker((sent[0] as Enqueued).assignedWorker).remove((sent[0] as Enqueued).jobId);
    await redis.client.zincrby(INDEX, -120_000, (sent[0] as Enqueued).jobId);
    const before = await redis.client.zrange(INDEX, 0, -1, 'WITHSCORES');
    const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url');
    const queries: [string, string][] = [
      ['foo=1', ''],
      ['limit=10&extra=', ''],
      ['state=bogus', 'state'],
      ['state=', 'state'],
      ['state=waiting&state=active', 'state'],
      ['limit=0', 'limit'],
      ['limit=501', 'limit'],
      ['limit=1.5', 'limit'],
      ['limit=abc', 'limit'],
      ['limit=-1', 'limit'],
      ['limit=', 'limit'],
      ['worker=', 'worker'],
      ['worker=a%2Fb', 'worker'],
      ['jobName=%20x', 'jobName'],
      ['cursor=not-a-cursor!', 'cursor'],
      ['cursor=abc', 'cursor'],
      [`cursor=${b64('{"s":"1","m":"x~y"}')}`, 'cursor'],
      [`cursor=${'A'.repeat(600)}`, 'cursor'],
    ];
    for (const [query, path] of queries) {
      const response = await get<Refusal>(`/jobs?${query}`);
      assert.equal(response.status, 400, query);
      assert.match(response.type, /^application\/json/, query);
      assert.equal(response.body.code, 'VALIDATION_FAILED', query);
      assert.equal(typeof response.body.error, 'string');
      assert.ok(
        response.body.details?.some((detail) => detail.path === path),
        `${query}: ${JSON.stringify(response.body.details)}`,
      );
    }
    assert.deepEqual(await redis.client.zrange(INDEX, 0, -1, 'WITHSCORES'), before, 'nothing dropped or added');
    // The same listing, well formed, does drop it.
    assert.equal((await list()).jobs.length, 2);
    assert.equal(await redis.client.zcard(INDEX), 2);
  });

  test('is a known route: HEAD answers, OPTIONS lists its methods, others answer 405 with Allow', async () => {
    const head = await fetch(`${app.url}/jobs`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    const options = await fetch(`${app.url}/jobs/`, { method: 'OPTIONS' });
    assert.deepEqual(await options.json(), { allow: ['GET', 'HEAD', 'OPTIONS'] });
    for (const method of ['POST', 'DELETE', 'PUT']) {
      const refused = await fetch(`${app.url}/jobs`, { method });
      assert.equal(refused.status, 405, method);
      assert.equal(refused.headers.get('allow'), 'GET, HEAD, OPTIONS');
      assert.equal(((await refused.json()) as Refusal).code, 'METHOD_NOT_ALLOWED');
    }
  });

  test('needs the API key when one is set', async () => {
    const guarded = await startApp(redis.target, {
      prefix: config.prefix,
      logger,
      workerTtlMs: 60_000,
      apiKey: API_KEY,
    });
    try {
      const refused = await fetch(`${guarded.url}/jobs`);
      assert.equal(refused.status, 401);
      assert.equal(((await refused.json()) as Refusal).code, 'UNAUTHORIZED');
      const allowed = await fetch(`${guarded.url}/jobs`, { headers: { authorization: `Bearer ${API_KEY}` } });
      assert.equal(allowed.status, 200);
      assert.deepEqual(await allowed.json(), { jobs: [], nextCursor: null });
    } finally {
      await guarded.close();
    }
  });
});
