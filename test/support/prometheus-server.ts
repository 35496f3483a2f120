/**
 * A real Prometheus for tests: the `prometheus` binary from PATH (Debian's package; CI installs it),
 * on a free loopback port, with a throw-away config and TSDB directory, scraping the given loopback
 * targets. Its HTTP API answers are validated with zod, so tests work with typed results.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { findOnPath } from '../../src/platform/find-on-path.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

const sampleValue = z.tuple([z.number(), z.string()]);

const vectorData = z.object({
  resultType: z.literal('vector'),
  result: z.array(z.object({ metric: z.record(z.string(), z.string()), value: sampleValue })),
});
const matrixData = z.object({
  resultType: z.literal('matrix'),
  result: z.array(z.object({ metric: z.record(z.string(), z.string()), values: z.array(sampleValue) })),
});
const scalarData = z.object({ resultType: z.enum(['scalar', 'string']), result: sampleValue });

const queryResponse = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('success'),
    data: z.discriminatedUnion('resultType', [vectorData, matrixData, scalarData]),
    warnings: z.array(z.string()).optional(),
  }),
  z.object({ status: z.literal('error'), errorType: z.string(), error: z.string() }),
]);

const targetsResponse = z.object({
  status: z.literal('success'),
  data: z.object({
    activeTargets: z.array(
      z.object({
        scrapeUrl: z.string(),
        health: z.string(),
        lastError: z.string(),
        labels: z.record(z.string(), z.string()),
      }),
    ),
  }),
});

export type QueryResponse = z.infer<typeof queryResponse>;
export type ActiveTarget = z.infer<typeof targetsResponse>['data']['activeTargets'][number];

/** One series of a query answer, whatever the result type: its labels and its sample values. */
export interface Series {
  readonly metric: Readonly<Record<string, string>>;
  readonly values: readonly number[];
}

/** The series of a successful answer; an error answer has none. */
export function seriesOf(response: QueryResponse): Series[] {
  if (response.status !== 'success') return [];
  const { data } = response;
  switch (data.resultType) {
    case 'vector':
      return data.result.map(({ metric, value }) => ({ metric, values: [Number(value[1])] }));
    case 'matrix':
      return data.result.map(({ metric, values }) => ({ metric, values: values.map(([, value]) => Number(value)) }));
    default:
      return [{ metric: {}, values: [Number(data.result[1])] }];
  }
}

export interface TestPrometheus {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** What prometheus wrote to stderr so far (the last 16 KiB), for failure messages. */
  readonly stderr: () => string;
  /** An instant query at the current time. */
  query(expr: string): Promise<QueryResponse>;
  /** A range query, times in seconds since the epoch. */
  queryRange(expr: string, start: number, end: number, stepSeconds: number): Promise<QueryResponse>;
  targets(): Promise<ActiveTarget[]>;
  /** Waits until every configured target has been scraped successfully. */
  waitForTargetsUp(timeoutMs?: number): Promise<ActiveTarget[]>;
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  /** `host:port` of each loopback target, scraped at `/metrics`. */
  readonly targets: readonly string[];
  readonly scrapeIntervalSeconds?: number;
  readonly jobName?: string;
  /**
   * More fields of the scrape job (`authorization`, ...), such as those of a deployment's own config;
   * the targets stay `targets`.
   */
  readonly scrape?: Readonly<Record<string, unknown>>;
}

/** The absolute path of `prometheus` on PATH, or undefined. */
export function findPrometheus(): string | undefined {
  return findOnPath('prometheus', process.env.PATH);
}

/**
 * The `skip` option of tests that need a binary of Debian's `prometheus` package (`prometheus` or
 * `promtool`). Outside CI a missing binary skips them and says how to install it; in CI (`CI` set,
 * as .ci/run does) they run and fail instead, so that CI never passes without them.
 */
export function skipUnlessInstalled(command: 'prometheus' | 'promtool'): string | false {
  if (findOnPath(command, process.env.PATH) !== undefined) return false;
  if ((process.env.CI ?? '') !== '') return false;
  return `${command} is not installed; apt-get install prometheus`;
}

/** The path of `prometheus`, or an error that says how to install it (in CI, where its tests do not skip). */
export function requirePrometheus(): string {
  const binary = findPrometheus();
  if (binary === undefined) {
    throw new Error(
      'the `prometheus` binary is not on PATH, and this test needs a real Prometheus. ' +
        'Install it with `sudo apt-get install prometheus` (CI does so in .ci/run).',
    );
  }
  return binary;
}

export async function startPrometheus({
  targets,
  scrapeIntervalSeconds = 1,
  jobName = 'bullpen',
  scrape = {},
}: PrometheusOptions): Promise<TestPrometheus> {
  const binary = requirePrometheus();
  for (const target of targets) {
    if (!/^127\.0\.0\.1:\d+$/.test(target))
      throw new Error(`only loopback targets are scraped in tests, not ${target}`);
  }

  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bullpen-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  // JSON is valid YAML, and needs no quoting rules of its own.
  const config = {
    global: {
      scrape_interval: `${scrapeIntervalSeconds}s`,
      scrape_timeout: `${scrapeIntervalSeconds}s`,
      evaluation_interval: `${scrapeIntervalSeconds}s`,
    },
    scrape_configs: [
      { job_name: jobName, metrics_path: '/metrics', scheme: 'http', ...scrape, static_configs: [{ targets }] },
    ],
  };
  writeFileSync(configFile, JSON.stringify(config, null, 2));

  let stderr = '';
  let child: ChildProcess;
  try {
    child = spawn(
      binary,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-16_384);
  });
  let spawnFailure: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    // Failing to spawn emits 'error' and no 'exit'.
    child.once('error', (error) => {
      spawnFailure ??= error;
      if (child.pid === undefined) resolve();
    });
  });
  const hasExited = () => child.pid === undefined || child.exitCode !== null || child.signalCode !== null;

  const url = `http://127.0.0.1:${port}`;
  const getJson = async (path: string): Promise<unknown> => {
    const response = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(10_000) });
    return await response.json();
  };

  const stop = async () => {
    if (!hasExited()) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const prometheus: TestPrometheus = {
    url,
    port,
    dir,
    stderr: () => stderr,
    query: async (expr) =>
      queryResponse.parse(await getJson(`/api/v1/query?${new URLSearchParams({ query: expr }).toString()}`)),
    queryRange: async (expr, start, end, stepSeconds) =>
      queryResponse.parse(
        await getJson(
          `/api/v1/query_range?${new URLSearchParams({ query: expr, start: String(start), end: String(end), step: String(stepSeconds) }).toString()}`,
        ),
      ),
    targets: async () => targetsResponse.parse(await getJson('/api/v1/targets?state=active')).data.activeTargets,
    waitForTargetsUp: (timeoutMs = 30_000) =>
      waitFor(
        async () => {
          if (hasExited()) throw new Error(`prometheus exited: ${stderr}`);
          const active = await prometheus.targets();
          if (active.length !== targets.length)
            throw new Error(`${active.length} active targets, expected ${targets.length}`);
          const down = active.filter((target) => target.health !== 'up');
          if (down.length > 0)
            throw new Error(
              down.map((target) => `${target.scrapeUrl}: ${target.health} ${target.lastError}`).join('; '),
            );
          return active;
        },
        { timeoutMs, intervalMs: 250, what: `prometheus to scrape ${targets.join(', ')} successfully` },
      ),
    stop,
  };

  try {
    let starting = true;
    // Fails at once when prometheus dies during start-up (a bad flag or config, a taken port). Both
    // promises are subscribed by the race, so the loser's outcome is never an unhandled rejection.
    const died = exited.then(() => {
      if (!starting) return;
      if (spawnFailure !== undefined) throw new Error(`could not start ${binary}: ${spawnFailure.message}`);
      throw new Error(`prometheus exited during start-up with ${child.exitCode ?? child.signalCode}: ${stderr}`);
    });
    const ready = waitFor(
      async () => {
        if (!starting) return true; // start-up failed already: stop polling
        const response = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) });
        return response.status === 200;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `prometheus to be ready on port ${port}` },
    );
    try {
      await Promise.race([ready, died]);
    } finally {
      starting = false;
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return prometheus;
}
