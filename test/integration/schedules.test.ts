/**
 * Recurring schedules (issue 23) on a real service of two workers, on one Redis or a cluster
 * (test/support/test-redis.ts): the API round trip (create, read, list, replace, delete), refusals
 * that name their field and store nothing, one job per tick carrying the schedule's name and tick
 * through the normal placement, `limit` and `endAt`, a replace whose next tick follows the new rule,
 * and `overlap: skip`, whose skipped ticks are counted and which never has two jobs going at once.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ScheduleAnswer } from '../../src/http/routes/schedules.js';
import { distinctTicks, jobsOf, putSchedule, readSchedule, tickOf } from '../support/schedules.js';
import { serviceSuite } from '../support/service-suite.js';
import { startTestRedis } from '../support/test-redis.js';
import { waitFor } from '../support/wait.js';

const EVERY_MS = 1_000;

interface Refusal {
  readonly code: string;
  readonly details?: { path: string; message: string }[];
}

describe('schedules', () => {
  const suite = serviceSuite(startTestRedis, (redis) => ({
    ...redis.serviceOptions,
    workers: 2,
    env: { WORKER_CONCURRENCY: '4', JOB_ATTEMPTS: '1' },
  }));
  const put = (name: string, body: unknown) => putSchedule(suite.service, name, body);
  const read = (name: string) => readSchedule(suite.service, name);
  const refused = async (name: string, body: unknown, status: number): Promise<Refusal> => {
    const answer = await suite.service.request<Refusal>('PUT', `/schedules/${name}`, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(answer.status, status, `${JSON.stringify(body)}: ${answer.text}`);
    return answer.body;
  };
  const fieldsOf = (refusal: Refusal) => (refusal.details ?? []).map(({ path }) => path).sort();

  test('PUT creates (201) and replaces (200), GET reads it with its next run, DELETE ends it', async () => {
    const startAt = new Date(Date.now() + 3_600_000).toISOString();
    const created = await put('nightly-report', {
      cron: '0 3 * * *',
      tz: 'Europe/Berlin',
      jobName: 'report',
      data: { kind: 'nightly' },
      group: 'reports',
      options: { attempts: 2 },
      startAt,
    });
    assert.equal(created.status, 201);
    const next = Date.parse(created.body.nextRunAt ?? '');
    assert.ok(next >= Date.parse(startAt), 'the first run is not before startAt');
    // 03:00 in Berlin is 01:00 or 02:00 UTC, whichever the season.
    assert.ok([1, 2].includes(new Date(next).getUTCHours()), `next run ${created.body.nextRunAt}`);
    assert.deepEqual({ ...created.body, nextRunAt: null, createdAt: null, updatedAt: null }, {
      name: 'nightly-report',
      cron: '0 3 * * *',
      tz: 'Europe/Berlin',
      everyMs: null,
      jobName: 'report',
      data: { kind: 'nightly' },
      group: 'reports',
      options: { attempts: 2 },
      startAt,
      endAt: null,
      limit: null,
      missedTicks: 'runOnce',
      overlap: 'allow',
      nextRunAt: null,
      lastRun: null,
      runs: 0,
      skipped: 0,
      missed: 0,
      createdAt: null,
      updatedAt: null,
    } satisfies Record<keyof ScheduleAnswer, unknown>);
    assert.deepEqual(await read('nightly-report'), created.body);

    const replaced = await put('nightly-report', { everyMs: 3_600_000, jobName: 'report' });
    assert.equal(replaced.status, 200);
    assert.equal(replaced.body.cron, null);
    assert.equal(replaced.body.everyMs, 3_600_000);
    assert.equal(replaced.body.createdAt, created.body.createdAt, 'a replace keeps the creation time');
    const nextAfter = Date.parse(replaced.body.nextRunAt ?? '') - Date.parse(replaced.body.updatedAt);
    assert.equal(nextAfter, 3_600_000, 'the next tick follows the new rule: one interval after the change');

    const removed = await suite.service.request('DELETE', '/schedules/nightly-report');
    assert.equal(removed.status, 204);
    assert.equal((await suite.service.request('GET', '/schedules/nightly-report')).status, 404);
    assert.equal((await suite.service.request('DELETE', '/schedules/nightly-report')).status, 404);
  });

  test('GET /schedules pages by name', async () => {
    for (const name of ['list-c', 'list-a', 'list-b']) await put(name, { everyMs: 3_600_000, jobName: 'listed' });
    const names: string[] = [];
    let cursor: string | null = 'list';
    while (cursor !== null) {
      const page: { status: number; text: string; body: { schedules: ScheduleAnswer[]; nextCursor: string | null } } =
        await suite.service.request<{ schedules: ScheduleAnswer[]; nextCursor: string | null }>(
          'GET',
          `/schedules?limit=2&cursor=${cursor}`,
        );
      assert.equal(page.status, 200, page.text);
      assert.ok(page.body.schedules.length <= 2);
      names.push(...page.body.schedules.map(({ name }) => name));
      cursor = page.body.nextCursor;
    }
    assert.deepEqual(
      names.filter((name) => name.startsWith('list-')),
      ['list-a', 'list-b', 'list-c'],
    );
    for (const name of ['list-a', 'list-b', 'list-c']) await suite.service.request('DELETE', `/schedules/${name}`);
  });

  test('a rule, zone, interval or bounds that cannot be used is refused with 422 naming the field; a malformed body 400; nothing is stored', async () => {
    const task = { jobName: 'bad' };
    const unusable: [unknown, string[]][] = [
      [{ ...task, cron: '61 * * * *' }, ['cron']],
      [{ ...task, cron: 'every day' }, ['cron']],
      [{ ...task, cron: '0 3 * * *', tz: 'Mars/Olympus' }, ['tz']],
      [{ ...task, everyMs: 999 }, ['everyMs']],
      [{ ...task, cron: '0 * * * *', everyMs: 60_000 }, ['cron']],
      [{ ...task }, ['everyMs']],
      [{ ...task, everyMs: 60_000, tz: 'UTC' }, ['tz']],
      [
        {
          ...task,
          everyMs: 60_000,
          startAt: new Date(Date.now() + 7_200_000).toISOString(),
          endAt: new Date(Date.now() + 3_600_000).toISOString(),
        },
        ['endAt'],
      ],
      [{ ...task, everyMs: 60_000, endAt: '2001-01-01T00:00:00Z' }, ['endAt']],
      [{ ...task, everyMs: 60_000, options: { expiresAt: '2099-01-01T00:00:00Z' } }, ['options.expiresAt']],
      [{ ...task, everyMs: 60_000, options: { delayMs: 5_000, expiresInMs: 5_000 } }, ['options.delayMs']],
    ];
    const malformed: [unknown, string[]][] = [
      [{ ...task, everyMs: 60_000, startAt: 'tomorrow' }, ['startAt']],
      [{ ...task, everyMs: 60_000, limit: 0 }, ['limit']],
      [{ ...task, everyMs: 60_000, missedTicks: 'all' }, ['missedTicks']],
      [{ ...task, everyMs: 60_000, overlap: 'never' }, ['overlap']],
      [{ everyMs: 60_000, jobName: 'has space' }, ['jobName']],
      [{ ...task, everyMs: 60_000, options: { attempts: 0 } }, ['options.attempts']],
      [{ ...task, everyMs: 60_000, surprise: true }, ['']],
    ];
    for (const [cases, status, code] of [
      [unusable, 422, 'INVALID_SCHEDULE'],
      [malformed, 400, 'VALIDATION_FAILED'],
    ] as const) {
      for (const [body, fields] of cases) {
        const refusal = await refused('bad-input', body, status);
        assert.equal(refusal.code, code, JSON.stringify(body));
        assert.deepEqual(fieldsOf(refusal), fields, JSON.stringify(body));
        assert.equal((await suite.service.request('GET', '/schedules/bad-input')).status, 404, 'nothing stored');
      }
    }
    // Every second is at the floor (SCHEDULE_MIN_INTERVAL_MS, 1 s by default): accepted.
    await put('at-the-floor', { ...task, cron: '* * * * * *' });
    assert.equal((await suite.service.request('DELETE', '/schedules/at-the-floor')).status, 204);
    await refused('has%20space', { ...task, everyMs: 60_000 }, 400);
  });

  test('every tick makes one job, through the normal placement, carrying the schedule and its tick; limit ends it', async () => {
    const { body } = await put('every-second', {
      everyMs: EVERY_MS,
      jobName: 'tick',
      data: { durationMs: 50 },
      options: { expiresInMs: 60_000 },
      limit: 4,
    });
    const firstTick = Date.parse(body.nextRunAt ?? '');
    const ended = await waitFor(
      async () => {
        const view = await read('every-second');
        return view.nextRunAt === null && view.runs === 4 ? view : undefined;
      },
      { timeoutMs: 30_000, what: 'the schedule to make its 4 jobs' },
    );
    const jobs = await waitFor(
      async () => {
        const all = await jobsOf(suite.service, 'every-second');
        return all.length === 4 && all.every(({ state }) => state === 'completed') ? all : undefined;
      },
      { what: 'its 4 jobs to complete' },
    );
    const ticks = distinctTicks(jobs);
    assert.deepEqual(
      ticks,
      [0, 1, 2, 3].map((i) => firstTick + i * EVERY_MS),
      'one job per tick, one interval apart, from the first',
    );
    for (const job of jobs) {
      assert.equal(job.schedule?.name, 'every-second');
      // Each tick's job counts its expiry from when it was made: about its tick.
      const expiresAfterTick = Date.parse(job.expiresAt ?? '') - tickOf(job);
      assert.ok(
        expiresAfterTick >= 60_000 && expiresAfterTick < 70_000,
        `expires ${expiresAfterTick} ms after its tick`,
      );
      assert.match(job.assignedWorker ?? '', /^test-[01]$/, 'placed on a worker like any task');
    }
    assert.deepEqual(ended.lastRun, { tickAt: new Date(ticks[3] ?? 0).toISOString(), jobId: jobs[3]?.jobId });
    assert.equal(ended.missed, 0);
  });

  test('endAt: no tick after it', async () => {
    const startAt = Date.now() + 1_000;
    await put('bounded', {
      everyMs: EVERY_MS,
      jobName: 'tick',
      data: { durationMs: 10 },
      startAt: new Date(startAt).toISOString(),
      endAt: new Date(startAt + 2_500).toISOString(),
    });
    const view = await waitFor(
      async () => {
        const current = await read('bounded');
        return current.nextRunAt === null ? current : undefined;
      },
      { what: 'the schedule to pass its end' },
    );
    assert.equal(view.runs, 3, 'ticks at startAt, +1 s and +2 s');
    assert.deepEqual(distinctTicks(await jobsOf(suite.service, 'bounded')), [
      startAt,
      startAt + 1_000,
      startAt + 2_000,
    ]);
  });

  test('overlap skip: a tick while the previous job still runs makes no job, and is counted', async () => {
    await put('no-overlap', {
      everyMs: EVERY_MS,
      jobName: 'slow-tick',
      data: { durationMs: 2_600 },
      overlap: 'skip',
    });
    const view = await waitFor(
      async () => {
        const current = await read('no-overlap');
        return current.runs >= 3 && current.skipped >= 4 ? current : undefined;
      },
      { timeoutMs: 40_000, what: 'three runs and some skipped ticks' },
    );
    await suite.service.request('DELETE', '/schedules/no-overlap');
    const jobs = await jobsOf(suite.service, 'no-overlap');
    distinctTicks(jobs);
    assert.ok(jobs.length >= view.runs);
    // Never two going at once: each job starts after the one before it finished.
    const ran = await waitFor(
      async () => {
        const all = await jobsOf(suite.service, 'no-overlap');
        return all.every(({ state }) => state === 'completed') ? all : undefined;
      },
      { what: 'the jobs to complete' },
    );
    for (let i = 1; i < ran.length; i += 1) {
      const before = Date.parse(ran[i - 1]?.timestamps.finishedAt ?? '');
      const started = Date.parse(ran[i]?.timestamps.startedAt ?? '');
      assert.ok(started >= before, `job ${i} started before job ${i - 1} finished`);
    }
    const metrics = await suite.service.request('GET', '/metrics');
    const skipped = [...metrics.text.matchAll(/^bullpen_schedule_ticks_total\{[^}]*outcome="skipped"[^}]*\} (\d+)$/gm)]
      .map((match) => Number(match[1]))
      .reduce((sum, count) => sum + count, 0);
    assert.ok(skipped >= view.skipped, `skipped ticks are counted in the metric (${skipped} of ${view.skipped})`);
  });
});
