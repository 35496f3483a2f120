/**
 * Tracing off costs nothing (issue 24): no OpenTelemetry SDK module is loaded in any process of the
 * service, primary or forked, after real traffic. Proved with a module spy (test/fixtures/module-spy.ts)
 * preloaded into every process through NODE_OPTIONS, which node:cluster hands to the forked processes:
 * it notes each process it runs in, and each module under `@opentelemetry/` that the process resolves
 * (ESM imports through a module resolve hook, CommonJS requires through the CommonJS loader). The
 * same spy with tracing on sees the SDK imported in every forked process, so the test can fail.
 *
 * One OpenTelemetry package is loaded whatever the setting: prom-client requires the API package,
 * `@opentelemetry/api` (no-op implementations only, for its exemplars). The test allows that one
 * package, entered only from prom-client, and nothing else.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SpyLine } from '../fixtures/module-spy-hooks.js';
import { FIXTURE_HANDLERS } from '../support/gate.js';
import { waitForJobs, type Enqueued } from '../support/jobs.js';
import { startOtlpReceiver } from '../support/otlp-receiver.js';
import { startService, type Service } from '../support/service.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';
import { enqueueTraced, newSpanId, newTraceId, parseTraceparent, traceparentOf } from '../support/traces.js';

const SPY = new URL('../fixtures/module-spy.js', import.meta.url);
/** The packages of the tracing SDK that otel.ts imports. */
const SDK_PACKAGES = ['sdk-trace-node', 'exporter-trace-otlp-http', 'resources', 'context-async-hooks', 'core'];

type ModuleLine = Extract<SpyLine, { kind: 'module' }>;

/** The `@opentelemetry/<package>` a resolved module belongs to. */
function packageOf(url: string): string {
  return /\/@opentelemetry\/([^/]+)\//.exec(url)?.[1] ?? url;
}

interface SpyRun {
  /** The primary's pid and those of its forked processes. */
  readonly primary: number;
  readonly forked: readonly number[];
  readonly lines: readonly SpyLine[];
  /** The 202s' `traceparent` headers. */
  readonly answered: readonly (string | null)[];
}

/**
 * Runs the service with the spy and `env`, sends it real traffic (enqueues carrying a traceparent,
 * jobs run to their end, a retry, reads of jobs), stops it and answers what the spy saw.
 */
async function spyOn(redis: ModeRedis, env: Readonly<Record<string, string>>): Promise<SpyRun> {
  const dir = mkdtempSync(join(tmpdir(), 'bullpen-spy-'));
  const file = join(dir, 'modules.jsonl');
  let service: Service | undefined;
  try {
    service = await startService({
      ...redis.serviceOptions,
      workers: 2,
      env: {
        NODE_OPTIONS: `--import=${SPY.href}`,
        MODULE_SPY_FILE: file,
        HANDLERS_DIR: FIXTURE_HANDLERS,
        ...env,
      },
    });
    const answered: (string | null)[] = [];
    const jobs: Enqueued[] = [];
    const tasks = [
      ...Array.from({ length: 4 }, (_, i) => ({ jobName: 'spied', data: { i, durationMs: 10 } })),
      { jobName: 'flaky', data: {}, options: { attempts: 2, backoffMs: 50 } },
    ];
    for (const task of tasks) {
      const traceparent = traceparentOf({ traceId: newTraceId(), spanId: newSpanId(), sampled: true });
      const { job, answered: header } = await enqueueTraced(service, task, traceparent);
      jobs.push(job);
      answered.push(header);
    }
    await waitForJobs(service, jobs);
    const forked = (await service.workers()).workers.map((worker) => worker.pid);
    const primary = service.child.pid;
    assert.ok(primary !== undefined);
    // Stopped before reading, so that what the processes load on their way out is seen too.
    assert.equal(await service.stop(), 0);
    service = undefined;
    const lines = readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as SpyLine);
    return { primary, forked, lines, answered };
  } finally {
    await service?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Asserts that the spy ran in the primary and in every forked process (their main threads). */
function assertSpiedEverywhere({ primary, forked, lines }: SpyRun): void {
  assert.equal(forked.length, 2);
  const spied = new Set(lines.flatMap((line) => (line.kind === 'loaded' && line.threadId === 0 ? [line.pid] : [])));
  for (const pid of [primary, ...forked]) assert.ok(spied.has(pid), `the spy ran in process ${pid}`);
}

const modulesOf = (lines: readonly SpyLine[]): ModuleLine[] =>
  lines.flatMap((line) => (line.kind === 'module' ? [line] : []));

describe('OpenTelemetry modules loaded, by a spy in every process', () => {
  let redis: ModeRedis | undefined;
  const started = () => {
    assert.ok(redis);
    return redis;
  };
  before(async () => {
    redis = await startTestRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  test('with tracing off, no process loads the SDK, after real traffic', async () => {
    const run = await spyOn(started(), {});
    assertSpiedEverywhere(run);
    assert.deepEqual(run.answered, Array<null>(run.answered.length).fill(null), 'no traceparent answered');
    const modules = modulesOf(run.lines);
    assert.deepEqual(
      modules.filter((line) => line.loader === 'import'),
      [],
      'nothing imports an OpenTelemetry module',
    );
    assert.deepEqual(
      [...new Set(modules.map((line) => packageOf(line.url)))].filter((name) => name !== 'api'),
      [],
    );
    const entries = modules.filter((line) => !line.parent.includes('/@opentelemetry/'));
    assert.ok(
      entries.every((line) => line.parent.includes('/prom-client/')),
      `the API package is entered from prom-client only: ${JSON.stringify(entries)}`,
    );
  });

  test('with tracing on, the same spy sees the SDK imported in every forked process, and not in the primary', async () => {
    const receiver = await startOtlpReceiver();
    try {
      const run = await spyOn(started(), {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_BSP_SCHEDULE_DELAY: '200',
      });
      assertSpiedEverywhere(run);
      assert.ok(
        run.answered.every((header) => parseTraceparent(header) !== undefined),
        'a traceparent answered',
      );
      const imported = modulesOf(run.lines).filter((line) => line.loader === 'import');
      for (const pid of run.forked) {
        const packages = new Set(imported.filter((line) => line.pid === pid).map((line) => packageOf(line.url)));
        for (const name of SDK_PACKAGES)
          assert.ok(packages.has(name), `process ${pid} imported @opentelemetry/${name}`);
      }
      assert.deepEqual(
        imported.filter((line) => line.pid === run.primary),
        [],
        'the primary, which serves no request and runs no job, does not',
      );
      assert.ok(receiver.spans.length > 0, 'and spans arrived');
    } finally {
      await receiver.stop();
    }
  });
});
