/**
 * The Grafana dashboard against a real Prometheus. Debian's `prometheus` binary scrapes the running
 * cluster (4 workers at concurrency 8, a real redis-server) on loopback every second while the test
 * keeps a mix of short and long jobs flowing, none of which fails at first. Then every panel's
 * expression, with Grafana's variables substituted, is evaluated through Prometheus's HTTP API on
 * this service that has seen no failure: it must succeed and return series with values, one per
 * worker on per-worker panels and one per host on per-host panels, each one telling its legend apart,
 * and there is no exception: the failed-jobs rate must show 0, not "No data", because every labelled
 * counter starts at 0. Then failing jobs join the traffic, and the failed-jobs panel must rise above 0.
 * The traffic is spread over three task groups, so that the group panels show groups by name.
 * The tests share the service, Prometheus and the traffic, started once for the file, but no test
 * reads what another did: each waits for the data it needs, and the failing jobs start in the `before`
 * of the last suite, so that any test runs alone too (`--test-name-pattern`).
 * The dashboard's host variable is set to its All value; choosing the service's host must show the
 * same series, and choosing a host that does not exist must empty every panel.
 *
 * Then the scrape job of `prometheus/prometheus.yml`, as compose runs it (with the key it is given in a
 * file: the app there runs with API_KEY), its DNS discovery replaced by the loopback target, scrapes a
 * service that has API_KEY set: the target must be up.
 *
 * Needs `prometheus` on PATH (CI installs it with apt-get). Without it the tests are skipped, saying
 * how to install it, except in CI (`CI` set), where they fail instead.
 * Paths are resolved from process.cwd(): tests run from the repository root.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import {
  requirePrometheus,
  seriesOf,
  skipUnlessInstalled,
  startPrometheus,
  type QueryResponse,
  type Series,
  type TestPrometheus,
} from '../support/prometheus-server.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { startService, type Service } from '../support/service.js';
import { waitFor } from '../support/wait.js';

const DASHBOARD_FILE = join(process.cwd(), 'grafana', 'dashboards', 'bullpen-worker-load.json');
const PROMETHEUS_CONFIG_FILE = join(process.cwd(), 'prometheus', 'prometheus.yml');

const WORKERS = 2;
const HOST_ID = 'test';
const WORKER_IDS = Array.from({ length: WORKERS }, (_, index) => `${HOST_ID}-${index}`);
/** What Grafana puts in place of `$host` when All is chosen (the variable's allValue). */
const ALL_HOSTS = '.*';
const CONCURRENCY = 4;
const SCRAPE_INTERVAL_SECONDS = 1;
/** How long all panels together may take to show data once Prometheus scrapes the service. */
const PANELS_DEADLINE_MS = 60_000;
/** The panel that shows the rate of failed attempts: 0 before any failure, then above 0. */
const FAILED_RATE_METRIC = 'bullpen_jobs_failed_total';
/** The group gauges: counts of the whole pool per group, with the host that served them and no worker. */
const GROUP_GAUGES = 'bullpen_group_(waiting|inflight|running)';

/**
 * What Grafana would put in place of its variables for this scrape interval. `$__rate_interval` is
 * at least 4 scrape intervals (Grafana: max($__interval + scrape interval, 4 × scrape interval)); 15 s
 * leaves rate() several samples per window. `$__interval` and `$__range` are not expected in the
 * dashboard but get plausible values should a panel use them.
 */
const GRAFANA_VARIABLES: Readonly<Record<string, string>> = {
  __rate_interval: '15s',
  __interval: '1s',
  __interval_ms: '1000',
  __range: '5m',
  __range_s: '300',
  __range_ms: '300000',
};

// ---------------------------------------------------------------------------------------------
// The dashboard's queries

const target = z.object({
  refId: z.string(),
  expr: z.string().optional(),
  legendFormat: z.string().optional(),
});
const panel = z.object({
  id: z.number(),
  title: z.string(),
  type: z.string(),
  targets: z.array(target).optional(),
  panels: z.array(z.unknown()).optional(),
});

interface PanelQuery {
  /** `panel 5 "Running jobs per worker" A`: how assertion messages name the query. */
  readonly name: string;
  readonly expr: string;
  readonly query: string;
  readonly legendFormat: string;
  /** The legend names the worker: Grafana draws one line (or stat) per worker. */
  readonly perWorker: boolean;
  /** The legend names the host: one line per host. */
  readonly perHost: boolean;
}

/** The expression as Grafana would send it with `host` as the value of the dashboard's host variable. */
function substituteGrafanaVariables(expr: string, host = ALL_HOSTS): string {
  const values: Readonly<Record<string, string>> = { ...GRAFANA_VARIABLES, host };
  return expr.replace(/\$(?:\{(\w+)\}|(\w+))/g, (whole, braced: string | undefined, plain: string | undefined) => {
    const name = braced ?? plain ?? '';
    return values[name] ?? whole;
  });
}

/** The label names a legend template uses, such as `worker` in `{{worker}} threads`. */
function legendLabels(legendFormat: string): string[] {
  return [...legendFormat.matchAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)].map((match) => match[1] ?? '');
}

function renderLegend(legendFormat: string, metric: Readonly<Record<string, string>>): string {
  return legendFormat.replace(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g, (_, label: string) => metric[label] ?? '');
}

function dashboardQueries(): PanelQuery[] {
  const dashboard = z.object({ panels: z.array(z.unknown()) }).parse(JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')));
  const queries: PanelQuery[] = [];
  const visit = (list: readonly unknown[]) => {
    for (const raw of list) {
      const { id, title, type, targets, panels } = panel.parse(raw);
      if (panels !== undefined) visit(panels); // panels inside a (collapsed) row
      if (type === 'row') continue;
      for (const { refId, expr, legendFormat = '' } of targets ?? []) {
        if (expr === undefined || expr.trim() === '') continue;
        queries.push({
          name: `panel ${id} "${title}" ${refId}`,
          expr,
          query: substituteGrafanaVariables(expr),
          legendFormat,
          perWorker: legendLabels(legendFormat).includes('worker'),
          perHost: legendLabels(legendFormat).includes('host'),
        });
      }
    }
  };
  visit(dashboard.panels);
  return queries;
}

const QUERIES = dashboardQueries();

// ---------------------------------------------------------------------------------------------
// Checking one answer

function describeSeries(series: readonly Series[]): string {
  const shown = series.slice(0, 8).map(({ metric, values }) => `${JSON.stringify(metric)} = ${values.join(',')}`);
  return `${series.length} series${shown.length > 0 ? `: ${shown.join('; ')}` : ''}${series.length > shown.length ? '; …' : ''}`;
}

/** What is wrong with a panel's answer right now, or undefined when the panel shows what it should. */
function problemWith(query: PanelQuery, response: QueryResponse): string | undefined {
  if (response.status !== 'success') return `Prometheus answered ${response.errorType}: ${response.error}`;
  const series = seriesOf(response);
  if (series.length === 0) return 'no series (the panel would show "No data")';
  if (!series.some(({ values }) => values.some(Number.isFinite))) {
    return `no series has a finite value (the panel would show nothing): ${describeSeries(series)}`;
  }
  const labels = legendLabels(query.legendFormat);
  for (const { metric } of series) {
    const missing = labels.filter((label) => metric[label] === undefined);
    if (missing.length > 0)
      return `a series lacks the legend's label(s) ${missing.join(', ')}: ${describeSeries(series)}`;
  }
  const legends = series.map(({ metric }) => renderLegend(query.legendFormat, metric));
  if (new Set(legends).size !== legends.length) {
    return `series share a legend ("${query.legendFormat}"), so the panel cannot tell them apart: ${describeSeries(series)}`;
  }
  if (query.perWorker) {
    const workers = series.map(({ metric }) => metric.worker ?? '').sort();
    if (JSON.stringify(workers) !== JSON.stringify(WORKER_IDS)) {
      return `expected exactly one series per worker ${WORKER_IDS.join(', ')}, got workers [${workers.join(', ')}]: ${describeSeries(series)}`;
    }
    const blank = series.filter(({ values }) => !values.every(Number.isFinite));
    if (blank.length > 0) return `worker(s) without a finite value: ${describeSeries(blank)}`;
  }
  if (query.perHost) {
    // Legends such as "{{host}} running" and "{{host}} capacity" come from separate targets, so each
    // target has exactly one series per host.
    const hosts = series.map(({ metric }) => metric.host ?? '');
    if (JSON.stringify(hosts) !== JSON.stringify([HOST_ID])) {
      return `expected exactly one series for host ${HOST_ID}, got hosts [${hosts.join(', ')}]: ${describeSeries(series)}`;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Traffic

const DURATIONS_MS = [200, 500, 1_000, 2_000];
/** The task groups of the traffic (`default` is also a task's without one). */
const TRAFFIC_GROUPS = ['tenant-a', 'tenant-b', 'default'];

interface Traffic {
  readonly enqueued: () => number;
  readonly failures: string[];
  /** From now on some jobs throw (`data.fail`), so that failures are counted too. */
  allowFailingJobs(): void;
  stop(): Promise<void>;
}

/**
 * Keeps jobs flowing until stopped: an opening burst of a few dozen jobs of mixed durations, then a
 * steady trickle. Every job succeeds until `allowFailingJobs()`; then some of them throw. Jobs
 * without `durationMs` run for TASK_DURATION_MS.
 */
function startTraffic(service: Service): Traffic {
  let stopped = false;
  let failing = false;
  let count = 0;
  const failures: string[] = [];
  const enqueue = async (task: { jobName: string; group: string | undefined; data: Record<string, unknown> }) => {
    try {
      const response = await service.enqueue(task);
      if (response.status === 202) count += 1;
      else failures.push(`${response.status} ${response.text}`);
    } catch (error) {
      if (!stopped) failures.push(String(error));
    }
  };
  const task = (n: number) => {
    if (n % 7 === 3) {
      return {
        jobName: 'flaky',
        data: failing ? { durationMs: 100, fail: 'asked to fail by the prometheus test' } : { durationMs: 100 },
      };
    }
    if (n % 11 === 5) return { jobName: 'defaulted', data: {} };
    if (n % 13 === 0) return { jobName: 'sha256', data: { text: `job ${n}`, rounds: 1_000 } };
    return { jobName: 'x', data: { durationMs: DURATIONS_MS[n % DURATIONS_MS.length] } };
  };
  const batch = (round: number, size: number) =>
    Array.from({ length: size }, (_, i) => round * size + i).map((n) => ({
      group: TRAFFIC_GROUPS[n % TRAFFIC_GROUPS.length],
      ...task(n),
    }));
  const loop = (async () => {
    await Promise.all(batch(0, 40).map(enqueue));
    for (let round = 1; !stopped; round += 1) {
      await Promise.all(batch(round, 4).map(enqueue));
      await sleep(400);
    }
  })();
  return {
    enqueued: () => count,
    failures,
    allowFailingJobs() {
      failing = true;
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** Before any job failed: no failed attempt was counted, and the failed-jobs panel shows 0. */
async function assertNoFailureYet(server: TestPrometheus): Promise<void> {
  const failedPanels = QUERIES.filter((query) => query.expr.includes(FAILED_RATE_METRIC));
  assert.ok(failedPanels.length > 0, `some panel shows ${FAILED_RATE_METRIC}`);
  // A rate needs a few scrapes: wait until each panel has data at all, as Grafana would show it.
  for (const query of failedPanels) {
    await waitFor(async () => seriesOf(await server.query(query.query)).length > 0, {
      timeoutMs: Math.max(1_000, panelsDeadline - Date.now()),
      intervalMs: 500,
      what: `${query.name} to show data`,
    }).catch(() => undefined); // the assertion below says what it showed
  }
  const now = Math.ceil(Date.now() / 1000);
  const failed = await server.queryRange(`sum(${FAILED_RATE_METRIC})`, Math.floor(trafficStartedAt), now, 1);
  const values = seriesOf(failed).flatMap((series) => series.values);
  assert.ok(
    values.length > 0,
    `sum(${FAILED_RATE_METRIC}) had samples since the traffic started: ${JSON.stringify(failed)}`,
  );
  assert.deepEqual(
    values.filter((value) => value !== 0),
    [],
    'no attempt failed before failing jobs were sent',
  );
  for (const query of failedPanels) {
    const response = await server.query(query.query);
    const series = seriesOf(response);
    assert.ok(
      series.length > 0,
      `${query.name}: data on a service that has seen no failure: ${JSON.stringify(response)}`,
    );
    assert.deepEqual(
      series.map(({ values: [value] }) => value),
      series.map(() => 0),
      `${query.name} shows 0`,
    );
  }
}

// ---------------------------------------------------------------------------------------------

let redis: TestRedis | undefined;
let service: Service | undefined;
let prometheus: TestPrometheus | undefined;
let traffic: Traffic | undefined;
let trafficStartedAt = 0;
let panelsDeadline = 0;
/** When prometheus had scraped the service successfully for the first time, in seconds. */
let firstScrapedAt = 0;

/**
 * The highest value of each series of `expr` since the traffic started, by its `label`, once every
 * one of `wanted` has been above 0, or after 30 s: the caller's assertions say what was seen.
 */
async function peaksSinceTraffic(
  server: TestPrometheus,
  expr: string,
  label: string,
  wanted: readonly string[],
): Promise<Map<string, number>> {
  let peaks = new Map<string, number>();
  await waitFor(
    async () => {
      const response = await server.queryRange(expr, Math.floor(trafficStartedAt), Math.ceil(Date.now() / 1000), 1);
      assert.equal(response.status, 'success', JSON.stringify(response));
      peaks = new Map(seriesOf(response).map(({ metric, values }) => [metric[label] ?? '', Math.max(...values)]));
      return wanted.every((key) => (peaks.get(key) ?? 0) > 0);
    },
    { timeoutMs: 30_000, intervalMs: 1_000, what: `every ${label} of ${expr} to be seen above 0` },
  ).catch(() => undefined);
  return peaks;
}

describe(
  'the Grafana dashboard against a real Prometheus scraping the cluster',
  { timeout: 180_000, skip: skipUnlessInstalled('prometheus') },
  () => {
    before(async () => {
      requirePrometheus(); // before starting anything: fail at once, and say how to install it
      redis = await startRedis();
      service = await startService({
        redisUrl: redis.url,
        workers: WORKERS,
        env: {
          WORKER_CONCURRENCY: String(CONCURRENCY),
          TASK_DURATION_MS: '1500',
          JOB_BACKOFF_MS: '200',
          SHUTDOWN_TIMEOUT_MS: '10000',
          LOG_LEVEL: 'warn',
          HOST_ID,
        },
      });
      prometheus = await startPrometheus({
        targets: [`127.0.0.1:${service.port}`],
        scrapeIntervalSeconds: SCRAPE_INTERVAL_SECONDS,
      });
      trafficStartedAt = Date.now() / 1000;
      traffic = startTraffic(service);
      await prometheus.waitForTargetsUp();
      firstScrapedAt = Date.now() / 1000;
      panelsDeadline = Date.now() + PANELS_DEADLINE_MS;
    });

    after(async () => {
      await traffic?.stop();
      await prometheus?.stop();
      const code = await service?.stop();
      await redis?.stop();
      if (service !== undefined) assert.equal(code, 0, 'the primary exits 0 on SIGTERM');
    });

    test('the dashboard has queries to check', () => {
      assert.ok(QUERIES.length > 0, `no panel queries found in ${DASHBOARD_FILE}`);
      assert.ok(
        QUERIES.some((query) => query.perWorker),
        'some panels are per worker',
      );
      assert.ok(
        QUERIES.some((query) => query.perHost),
        'some panels are per host',
      );
      for (const query of QUERIES) {
        assert.doesNotMatch(query.query, /\$/, `${query.name}: an unknown Grafana variable is left in ${query.expr}`);
      }
    });

    test('prometheus scrapes the service /metrics on loopback', async () => {
      assert.ok(prometheus !== undefined && service !== undefined);
      const [scraped] = await prometheus.waitForTargetsUp();
      assert.equal(scraped?.scrapeUrl, `${service.url}/metrics`);
      assert.equal(scraped?.health, 'up');
    });

    for (const query of QUERIES) {
      test(`before any failure, ${query.name} returns data: ${query.expr}`, async () => {
        const server = prometheus;
        assert.ok(server !== undefined);
        let problem = 'not evaluated yet';
        let last: QueryResponse | undefined;
        try {
          await waitFor(
            async () => {
              last = await server.query(query.query);
              if (last.status === 'error' && last.errorType === 'bad_data') return true; // will not get better
              const found = problemWith(query, last);
              problem = found ?? '';
              return found === undefined;
            },
            { timeoutMs: Math.max(1_000, panelsDeadline - Date.now()), intervalMs: 500, what: query.name },
          );
        } catch (error) {
          const cause =
            error instanceof Error && error.cause instanceof Error ? ` (last error: ${error.cause.message})` : '';
          assert.fail(
            `${query.name} with expression ${query.query} never showed data within the deadline: ${problem}${cause}`,
          );
        }
        assert.ok(last !== undefined);
        assert.equal(
          last.status,
          'success',
          `${query.name}: ${query.query} failed: ${last.status === 'error' ? last.error : ''}`,
        );
        assert.equal(problemWith(query, last), undefined, `${query.name}: ${query.query}`);
      });
    }

    test('no job had failed while every panel showed data, and the failed-jobs panel showed 0', async () => {
      const server = prometheus;
      assert.ok(server !== undefined);
      await assertNoFailureYet(server);
    });

    test('every bullpen series carries the host label, and the worker label unless it is a group gauge', async () => {
      const server = prometheus;
      assert.ok(server !== undefined);
      const names = seriesOf(await server.query('group by (__name__) ({__name__=~"bullpen_.+"})')).map(
        ({ metric }) => metric.__name__ ?? '',
      );
      for (const name of [
        'bullpen_worker_up',
        'bullpen_queue_jobs',
        'bullpen_jobs_completed_total',
        'bullpen_jobs_moved_total',
        'bullpen_workers_retired_total',
      ]) {
        assert.ok(names.includes(name), `${name} was scraped: ${names.join(', ')}`);
      }
      const unlabelled = await server.query(
        `group by (__name__) ({__name__=~"bullpen_.+", host!="${HOST_ID}"} or {__name__=~"bullpen_.+", __name__!~"${GROUP_GAUGES}", worker=""})`,
      );
      assert.equal(unlabelled.status, 'success', JSON.stringify(unlabelled));
      assert.deepEqual(
        seriesOf(unlabelled).map(({ metric }) => metric.__name__),
        [],
        `series without host="${HOST_ID}" or without a worker`,
      );
    });

    test('choosing the host shows the same series as All; choosing another host empties every panel', async () => {
      const server = prometheus;
      assert.ok(server !== undefined);
      // One evaluation time for all three answers, so that they can be compared: a moment whose
      // scrapes are all stored, late enough for rate() to have two samples.
      await sleep(Math.max(0, (firstScrapedAt + 4 - Date.now() / 1000) * 1000));
      const at = Date.now() / 1000 - 1.5;
      const labelSets = async (expr: string) => {
        const response = await server.queryRange(expr, at, at, 1);
        assert.equal(response.status, 'success', `${expr}: ${JSON.stringify(response)}`);
        return seriesOf(response)
          .map(({ metric }) => JSON.stringify(Object.entries(metric).sort(([a], [b]) => (a < b ? -1 : 1))))
          .sort();
      };
      for (const query of QUERIES) {
        const all = await labelSets(substituteGrafanaVariables(query.expr, ALL_HOSTS));
        assert.ok(all.length > 0, `${query.name}: no series at ${at}`);
        assert.deepEqual(
          await labelSets(substituteGrafanaVariables(query.expr, HOST_ID)),
          all,
          `${query.name} with host=${HOST_ID}`,
        );
        assert.deepEqual(
          await labelSets(substituteGrafanaVariables(query.expr, 'no-such-host')),
          [],
          `${query.name} with an unknown host`,
        );
      }
    });

    test('the group gauges showed every group of the traffic running by name, and other', async () => {
      const server = prometheus;
      assert.ok(server !== undefined);
      const peaks = await peaksSinceTraffic(server, 'max by (group) (bullpen_group_running)', 'group', TRAFFIC_GROUPS);
      assert.deepEqual(
        [...TRAFFIC_GROUPS, 'other'].filter((group) => !peaks.has(group)),
        [],
        `a series per group with work, and other: ${JSON.stringify([...peaks])}`,
      );
      for (const group of TRAFFIC_GROUPS) {
        assert.ok((peaks.get(group) ?? 0) > 0, `${group} was never seen running: ${JSON.stringify([...peaks])}`);
      }
    });

    test('running jobs were non-zero on every worker while prometheus scraped', async () => {
      const server = prometheus;
      assert.ok(server !== undefined);
      // Jobs keep flowing, so every worker is seen running some within a few scrapes.
      const peaks = await peaksSinceTraffic(server, 'bullpen_worker_active_jobs', 'worker', WORKER_IDS);
      for (const worker of WORKER_IDS) {
        const peak = peaks.get(worker) ?? 0;
        assert.ok(
          peak > 0,
          `bullpen_worker_active_jobs{worker="${worker}"} was never above 0: ${JSON.stringify([...peaks])}`,
        );
        assert.ok(
          peak <= CONCURRENCY,
          `bullpen_worker_active_jobs{worker="${worker}"} reached ${peak}, above the concurrency ${CONCURRENCY}`,
        );
      }
    });

    describe('once failing jobs join the traffic', () => {
      before(() => {
        assert.ok(traffic !== undefined);
        traffic.allowFailingJobs();
      });

      test('once jobs fail, the failed-jobs panel rises above 0', async () => {
        const server = prometheus;
        assert.ok(server !== undefined);
        for (const query of QUERIES.filter(({ expr }) => expr.includes(FAILED_RATE_METRIC))) {
          let last: QueryResponse | undefined;
          await waitFor(
            async () => {
              last = await server.query(query.query);
              return seriesOf(last).some(({ values }) => values.some((value) => value > 0));
            },
            { timeoutMs: 30_000, intervalMs: 500, what: `${query.name} above 0` },
          ).catch(() => assert.fail(`${query.name} stayed at 0 after failing jobs were sent: ${JSON.stringify(last)}`));
        }
      });

      test('failed attempts were counted, and the traffic was accepted', async () => {
        const server = prometheus;
        assert.ok(server !== undefined && traffic !== undefined);
        let response: QueryResponse | undefined;
        const failedCount = async () => {
          response = await server.query('sum(bullpen_jobs_failed_total)');
          return seriesOf(response)[0]?.values[0] ?? 0;
        };
        await waitFor(async () => (await failedCount()) > 0, {
          timeoutMs: 30_000,
          intervalMs: 500,
          what: 'a failed attempt to be counted',
        }).catch(() => assert.fail(`no failed attempt was counted: ${JSON.stringify(response)}`));
        assert.ok(traffic.enqueued() >= 40, `only ${traffic.enqueued()} tasks were accepted`);
        assert.deepEqual(traffic.failures, [], 'every enqueue was accepted');
      });
    });
  },
);

/**
 * The scrape job of prometheus/prometheus.yml for a loopback target: without its DNS discovery (the
 * test gives the target), and with the key in `keyFile`, where compose writes it in the container.
 */
function composeScrapeJob(keyFile: string): Record<string, unknown> {
  const config = z
    .object({ scrape_configs: z.array(z.looseObject({ job_name: z.string() })) })
    .parse(parseYaml(readFileSync(PROMETHEUS_CONFIG_FILE, 'utf8')));
  const job = config.scrape_configs.find(({ job_name }) => job_name === 'bullpen');
  assert.ok(job !== undefined, 'prometheus.yml has the bullpen job');
  const { dns_sd_configs: discovered, authorization, ...rest } = job;
  assert.ok(discovered !== undefined, 'compose discovers the replicas; the test gives the loopback target instead');
  const credentials = z.object({ type: z.literal('Bearer'), credentials_file: z.string() }).parse(authorization);
  return { ...rest, authorization: { ...credentials, credentials_file: keyFile } };
}

describe(
  "compose's scrape job against a service that has API_KEY",
  { timeout: 120_000, skip: skipUnlessInstalled('prometheus') },
  () => {
    const key = 'prometheus-scrape-key-0123456789';
    let keyDir: string | undefined;
    let keyed: Service | undefined;
    let keyedRedis: TestRedis | undefined;
    let scraper: TestPrometheus | undefined;

    before(async () => {
      requirePrometheus();
      keyDir = mkdtempSync(join(tmpdir(), 'bullpen-scrape-key-'));
      const keyFile = join(keyDir, 'bullpen-api-key');
      writeFileSync(keyFile, key, { mode: 0o600 });
      keyedRedis = await startRedis();
      keyed = await startService({
        redisUrl: keyedRedis.url,
        workers: 1,
        env: { API_KEY: key, LOG_LEVEL: 'warn', HOST_ID: 'keyed' },
      });
      scraper = await startPrometheus({ targets: [`127.0.0.1:${keyed.port}`], scrape: composeScrapeJob(keyFile) });
    });

    after(async () => {
      await scraper?.stop();
      await keyed?.stop();
      await keyedRedis?.stop();
      if (keyDir !== undefined) rmSync(keyDir, { recursive: true, force: true });
    });

    test('/metrics refuses a scrape without the key, and the target of the compose job is up', async () => {
      assert.ok(keyed !== undefined && scraper !== undefined);
      assert.equal((await fetch(`${keyed.url}/metrics`)).status, 401, 'the key is needed: the test proves its use');
      const [target] = await scraper.waitForTargetsUp();
      assert.equal(target?.scrapeUrl, `${keyed.url}/metrics`);
      assert.equal(target?.health, 'up');
      const server = scraper;
      await waitFor(async () => seriesOf(await server.query('bullpen_worker_up')).length > 0, {
        timeoutMs: 30_000,
        intervalMs: 250,
        what: "the keyed service's metrics to be stored",
      });
    });
  },
);
