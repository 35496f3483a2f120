/**
 * The `/groups` API (issue 22, item 3) on a real service of two workers of two slots, behind an API
 * key, on one Redis or a cluster (test/support/test-redis.ts): settings round trip through PUT, GET
 * and DELETE, a PUT merges (a field not sent is kept, `null` removes it), the list pages by name, a
 * refused change names each field at fault and stores nothing, every route needs the key, and a
 * setting applies at once to the whole pool (a paused group's jobs wait, and run once it is resumed).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import type { GroupAnswer } from '../../src/http/routes/groups.js';
import type { Enqueued } from '../support/jobs.js';
import type { HttpResult } from '../support/service.js';
import { serviceSuite } from '../support/service-suite.js';
import { startTestRedis } from '../support/test-redis.js';
import { waitFor } from '../support/wait.js';

const KEY = 'group-settings-test-key-0123456789';
/** GROUP_CONCURRENCY: what a group without a concurrency of its own is held to. */
const DEFAULT_CONCURRENCY = 100;

interface GroupPage {
  readonly groups: GroupAnswer[];
  readonly nextCursor: string | null;
}

interface Refusal {
  readonly code: string;
  readonly error: string;
  readonly details?: { path: string; message: string }[];
}

const NO_SETTINGS = { concurrency: null, rateLimit: null, weight: null, paused: null };

describe('group settings', () => {
  const suite = serviceSuite(startTestRedis, (redis) => ({
    ...redis.serviceOptions,
    workers: 2,
    env: {
      API_KEY: KEY,
      WORKER_CONCURRENCY: '2',
      GROUP_CONCURRENCY: String(DEFAULT_CONCURRENCY),
      JOB_ATTEMPTS: '1',
    },
  }));

  const call = <T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    suite.service.request<T>(method, path, {
      headers: {
        authorization: `Bearer ${KEY}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
  const ok = <T>(answer: HttpResult<T>): T => {
    assert.equal(answer.status, 200, answer.text);
    return answer.body;
  };
  const read = async (group: string) => ok(await call<GroupAnswer>('GET', `/groups/${group}`));
  const put = async (group: string, body: unknown) => ok(await call<GroupAnswer>('PUT', `/groups/${group}`, body));
  const settingsOf = ({ concurrency, rateLimit, weight, paused }: GroupAnswer) => ({
    concurrency,
    rateLimit,
    weight,
    paused,
  });

  test('a group with no work and no settings has a view: null settings, zero counts', async () => {
    assert.deepEqual(await read('nobody-yet'), {
      group: 'nobody-yet',
      ...NO_SETTINGS,
      effectiveConcurrency: DEFAULT_CONCURRENCY,
      waiting: 0,
      running: 0,
      inflight: 0,
    });
  });

  test('PUT merges into the stored settings, null removes a field, DELETE drops them all', async () => {
    const group = 'tenant-rt:eu.1';
    const first = await put(group, { concurrency: 3, rateLimit: { max: 10, durationMs: 1000 } });
    assert.deepEqual(settingsOf(first), { ...NO_SETTINGS, concurrency: 3, rateLimit: { max: 10, durationMs: 1000 } });
    assert.equal(first.effectiveConcurrency, 3, 'its own concurrency applies over GROUP_CONCURRENCY');
    assert.deepEqual(await read(group), first, 'GET answers what PUT answered');

    const merged = await put(group, { weight: 2, paused: false });
    assert.deepEqual(settingsOf(merged), {
      concurrency: 3,
      rateLimit: { max: 10, durationMs: 1000 },
      weight: 2,
      paused: false,
    });
    const replaced = await put(group, { rateLimit: { max: 5, durationMs: 60_000 }, concurrency: null });
    assert.deepEqual(settingsOf(replaced), {
      concurrency: null,
      rateLimit: { max: 5, durationMs: 60_000 },
      weight: 2,
      paused: false,
    });
    assert.equal(replaced.effectiveConcurrency, DEFAULT_CONCURRENCY, 'without its own, GROUP_CONCURRENCY applies');
    assert.deepEqual(settingsOf(await put(group, {})), settingsOf(replaced), 'an empty change changes nothing');

    const dropped = ok(await call<GroupAnswer>('DELETE', `/groups/${group}`));
    assert.deepEqual(settingsOf(dropped), NO_SETTINGS);
    assert.deepEqual(settingsOf(await read(group)), NO_SETTINGS);
    assert.equal(
      (await listAll()).some((view) => view.group === group),
      false,
      'a group without settings or work is not listed',
    );

    const removedOneByOne = await put(group, { weight: 4 });
    assert.equal(removedOneByOne.weight, 4);
    assert.deepEqual(settingsOf(await put(group, { weight: null })), NO_SETTINGS);
    assert.equal(
      (await listAll()).some((view) => view.group === group),
      false,
      'removing its last setting drops the group',
    );
  });

  /** Every page of `GET /groups`, following `nextCursor`; each page checked against `limit`. */
  const listAll = async (limit?: number): Promise<GroupAnswer[]> => {
    const all: GroupAnswer[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 1000; pages += 1) {
      const query: URLSearchParams = new URLSearchParams({
        ...(limit === undefined ? {} : { limit: String(limit) }),
        ...(cursor === null ? {} : { cursor }),
      });
      const page: GroupPage = ok(await call<GroupPage>('GET', `/groups?${query.toString()}`));
      if (limit !== undefined) assert.ok(page.groups.length <= limit, `a page holds at most ${limit}`);
      all.push(...page.groups);
      if (page.nextCursor === null) return all;
      assert.equal(page.nextCursor, page.groups.at(-1)?.group, 'the cursor is the last name of the page');
      cursor = page.nextCursor;
    }
    throw new Error('the pages never ended');
  };

  test('GET /groups pages the groups with settings by name; a bad query is refused naming the parameter', async () => {
    const names = ['list-e', 'list-a', 'list-c', 'list-b', 'list-d'];
    for (const [i, name] of names.entries()) await put(name, { weight: i + 1 });

    const listed = await listAll(2);
    const groups = listed.map(({ group }) => group);
    assert.deepEqual(groups, [...groups].sort(), 'sorted by name, each listed once');
    assert.equal(new Set(groups).size, groups.length);
    assert.deepEqual(
      groups.filter((group) => group.startsWith('list-')),
      [...names].sort(),
    );
    assert.equal(listed.find(({ group }) => group === 'list-c')?.weight, 3, 'each with its view');
    assert.deepEqual(await listAll(), listed, 'the default limit gives the same list');

    const afterC = ok(await call<GroupPage>('GET', '/groups?cursor=list-c&limit=2'));
    assert.deepEqual(
      afterC.groups.map(({ group }) => group),
      ['list-d', 'list-e'],
      'the page goes on after the name of the cursor',
    );

    for (const [query, path] of [
      ['limit=0', 'limit'],
      ['limit=501', 'limit'],
      ['limit=ten', 'limit'],
      ['cursor=a%20b', 'cursor'],
      ['state=waiting', ''],
    ] as const) {
      const refused = await call<Refusal>('GET', `/groups?${query}`);
      assert.equal(refused.status, 400, `${query}: ${refused.text}`);
      assert.equal(refused.body.code, 'VALIDATION_FAILED');
      assert.deepEqual([...new Set(refused.body.details?.map((detail) => detail.path))], [path], query);
    }
    for (const name of names) ok(await call('DELETE', `/groups/${name}`));
  });

  test('a refused change names each field at fault and stores nothing', async () => {
    const group = 'tenant-refused';
    const kept = await put(group, { concurrency: 5, weight: 2 });
    const bodies: readonly (readonly [unknown, readonly string[]])[] = [
      [{ concurrency: 0 }, ['concurrency']],
      [{ concurrency: 1_000_001 }, ['concurrency']],
      [{ concurrency: 1.5 }, ['concurrency']],
      [{ concurrency: '4' }, ['concurrency']],
      [{ rateLimit: { max: 1001, durationMs: 1000 } }, ['rateLimit.max']],
      [{ rateLimit: { max: 0, durationMs: 1000 } }, ['rateLimit.max']],
      [{ rateLimit: { max: 10 } }, ['rateLimit.durationMs']],
      [{ rateLimit: { max: 10, durationMs: 86_400_001 } }, ['rateLimit.durationMs']],
      [{ rateLimit: { max: 10, durationMs: 1000, burst: 2 } }, ['rateLimit']],
      [{ rateLimit: 10 }, ['rateLimit']],
      [{ weight: 0 }, ['weight']],
      [{ weight: 101 }, ['weight']],
      [{ paused: 'yes' }, ['paused']],
      [{ concurrency: 4, weight: 0 }, ['weight']],
      [{ concurrency: 0, weight: 101, paused: 1 }, ['concurrency', 'weight', 'paused']],
      [{ colour: 'red' }, ['']],
      [[], ['']],
      [42, ['']],
      [null, ['']],
      ['{"__proto__": {"concurrency": 1}}', ['__proto__']],
    ];
    for (const [body, paths] of bodies) {
      const refused = await call<Refusal>('PUT', `/groups/${group}`, body);
      const what = typeof body === 'string' ? body : JSON.stringify(body);
      assert.equal(refused.status, 400, `${what}: ${refused.text}`);
      assert.equal(refused.body.code, 'VALIDATION_FAILED', what);
      assert.deepEqual([...new Set(refused.body.details?.map((detail) => detail.path))], paths, what);
    }
    const unknown = await call<Refusal>('PUT', `/groups/${group}`, { colour: 'red' });
    assert.match(unknown.body.details?.[0]?.message ?? '', /colour/, 'an unknown field is named in the message');

    const malformed = await call<Refusal>('PUT', `/groups/${group}`, '{"concurrency": ');
    assert.equal(malformed.status, 400, malformed.text);
    assert.equal(malformed.body.code, 'MALFORMED_JSON');
    const untyped = await call<Refusal>('PUT', `/groups/${group}`, '{"concurrency":1}', {
      'content-type': 'text/plain',
    });
    assert.equal(untyped.status, 415, untyped.text);
    const empty = await suite.service.request<Refusal>('PUT', `/groups/${group}`, {
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'content-length': '0' },
    });
    assert.equal(empty.status, 400, empty.text);
    assert.equal(empty.body.code, 'MALFORMED_JSON');

    assert.deepEqual(await read(group), kept, 'nothing was stored');

    for (const method of ['GET', 'PUT', 'DELETE']) {
      for (const name of ['g'.repeat(65), 'a%20b', 'tenant%2Fa', '%C3%A9']) {
        const refused = await call<Refusal>(
          method,
          `/groups/${name}`,
          method === 'PUT' ? { concurrency: 1 } : undefined,
        );
        assert.equal(refused.status, 400, `${method} ${name}: ${refused.text}`);
        assert.equal(refused.body.code, 'VALIDATION_FAILED');
        assert.deepEqual(
          refused.body.details?.map((detail) => detail.path),
          ['group'],
        );
      }
    }
    assert.equal((await read('g'.repeat(64))).group, 'g'.repeat(64), '64 characters are a name');
    ok(await call('DELETE', `/groups/${group}`));
  });

  test('every /groups route needs the API key, and a refused change stores nothing', async () => {
    const group = 'tenant-keyed';
    const noKey = { authorization: '' };
    for (const [method, path, body] of [
      ['GET', '/groups', undefined],
      ['GET', `/groups/${group}`, undefined],
      ['PUT', `/groups/${group}`, { paused: true }],
      ['DELETE', `/groups/${group}`, undefined],
    ] as const) {
      const refused = await call<Refusal>(method, path, body, noKey);
      assert.equal(refused.status, 401, `${method} ${path}: ${refused.text}`);
      assert.equal(refused.body.code, 'UNAUTHORIZED');
      const wrong = await call<Refusal>(method, path, body, { authorization: `Bearer ${KEY}x` });
      assert.equal(wrong.status, 401, `${method} ${path} with a wrong key`);
    }
    assert.deepEqual(settingsOf(await read(group)), NO_SETTINGS);
  });

  test('a setting applies at once to the whole pool: a paused group waits, and runs once resumed', async () => {
    const group = 'tenant-paused';
    const paused = await put(group, { paused: true });
    assert.equal(paused.paused, true);

    const enqueued: Enqueued[] = [];
    for (let i = 0; i < 3; i += 1) {
      const answer = await call<Enqueued>('POST', '/enqueue-task', {
        jobName: 'paused-work',
        group,
        data: { durationMs: 50, i },
      });
      assert.equal(answer.status, 202, answer.text);
      enqueued.push(answer.body);
    }
    await waitFor(async () => (await read(group)).waiting === 3, { what: 'the 3 jobs to be held' });
    // Four slots are free the whole time: none of them takes a job of the paused group.
    for (let look = 0; look < 6; look += 1) {
      const view = await read(group);
      assert.deepEqual(
        { waiting: view.waiting, running: view.running, inflight: view.inflight },
        {
          waiting: 3,
          running: 0,
          inflight: 0,
        },
      );
      await sleep(200);
    }
    for (const { jobId } of enqueued) {
      const job = ok(await call<{ state: string }>('GET', `/jobs/${jobId}`));
      assert.notEqual(job.state, 'active', `${jobId} does not run while its group is paused`);
      assert.notEqual(job.state, 'completed', `${jobId} does not run while its group is paused`);
    }

    const resumed = await put(group, { paused: false });
    assert.equal(resumed.paused, false);
    // waitForJobs asks without the key: the jobs are read here with it.
    await waitFor(
      async () => {
        const states = await Promise.all(
          enqueued.map(async ({ jobId }) => ok(await call<{ state: string }>('GET', `/jobs/${jobId}`)).state),
        );
        assert.ok(!states.includes('failed'), `a job failed: ${states.join(', ')}`);
        return states.every((state) => state === 'completed');
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'the 3 jobs to complete once their group is resumed' },
    );
    await waitFor(
      async () => {
        const view = await read(group);
        return view.waiting === 0 && view.running === 0 && view.inflight === 0;
      },
      { what: "the group's counts to return to 0" },
    );
    ok(await call('DELETE', `/groups/${group}`));
  });
});
