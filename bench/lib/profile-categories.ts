/**
 * Sorts the samples of a V8 CPU profile (the `.cpuprofile` JSON that `node --cpu-prof` writes) into
 * a few categories of work, so that the profile scenario can say where a short job's CPU goes. Pure:
 * no files, no processes, so the rules can be read (and changed) in one place.
 *
 * A sample is charged to one category. Its stack is walked from the leaf up and every category seen
 * on it is noted; the one that comes first in `CATEGORIES` wins. The order puts what a frame is
 * doing for (a ledger update, BullMQ's add) before the generic layers it goes through (the Redis
 * client, Express), so an ioredis frame under a ledger call counts as ledger, and the socket write
 * of an HTTP answer counts as HTTP.
 */

export interface CallFrame {
  readonly functionName: string;
  readonly url: string;
}

export interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

/** The parts of a `.cpuprofile` used here; times are microseconds on the monotonic clock. */
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

interface Rule {
  readonly name: string;
  /** What the row means, for the report. */
  readonly label: string;
  readonly matches: (frame: CallFrame) => boolean;
}

const inPackage = (url: string, names: readonly string[]) =>
  names.some((name) => url.includes(`/node_modules/${name}/`));
const inSource = (url: string, path: string) => url.includes(`/dist/${path}`);
const bullmq = (frame: CallFrame, names: ReadonlySet<string>) =>
  inPackage(frame.url, ['bullmq']) && names.has(frame.functionName);

/** BullMQ's functions on each path (async ones included: an await resumes with them at the root). */
const ADD = new Set(['add', 'addJob', 'addBulk', 'create', 'createBulk', 'addStandardJob', 'addJobToTransaction']);
/** Not `mainLoop`: it also calls the processor, so everything a job does would be charged to fetch. */
const FETCH = new Set(['getNextJob', '_getNextJob', 'waitForJob', 'moveToActive', 'nextJobFromJobData', 'fromJSON']);
const COMPLETION = new Set([
  'handleCompleted',
  'moveToCompleted',
  'moveToFinished',
  'moveToFinishedArgs',
  'moveToCompletedArgs',
  'getKeepJobs',
  'handleFailed',
  'moveToFailed',
  'shouldRetryJob',
]);
const PROGRESS = new Set(['updateProgress', 'updateJobProgress']);

const HTTP_PACKAGES = [
  'express',
  'router',
  'body-parser',
  'raw-body',
  'on-finished',
  'finalhandler',
  'content-type',
  'type-is',
  'media-typer',
  'mime-types',
  'accepts',
  'negotiator',
  'iconv-lite',
  'http-errors',
  'statuses',
  'parseurl',
  'encodeurl',
  'etag',
  'fresh',
  'vary',
  'qs',
  'bytes',
  'depd',
  'debug',
  'send',
  'proxy-addr',
  'is-promise',
  'path-to-regexp',
];

/** In priority order: on a stack with several, the first listed wins. */
export const CATEGORIES: readonly Rule[] = [
  { name: 'gc', label: 'GC `(garbage collector)`', matches: (f) => f.functionName === '(garbage collector)' },
  { name: 'native', label: 'native, no JS frame `(program)`', matches: (f) => f.functionName === '(program)' },
  {
    name: 'logging',
    label: 'logging (pino, sonic-boom)',
    matches: (f) =>
      inPackage(f.url, ['pino', 'sonic-boom', 'pino-std-serializers', 'thread-stream', 'fast-redact']) ||
      inSource(f.url, 'src/logging/'),
  },
  {
    name: 'metrics',
    label: 'metrics (prom-client, src/metrics/)',
    matches: (f) => inPackage(f.url, ['prom-client', 'tdigest', 'bintrees']) || inSource(f.url, 'src/metrics/'),
  },
  {
    name: 'validation',
    label: 'validation (zod, src/http/schemas)',
    matches: (f) => inPackage(f.url, ['zod']) || inSource(f.url, 'src/http/schemas'),
  },
  {
    name: 'progress',
    label: 'progress (workers/progress-throttle, src/execution/progress, updateProgress)',
    matches: (f) =>
      inSource(f.url, 'workers/progress-throttle') || inSource(f.url, 'src/execution/progress') || bullmq(f, PROGRESS),
  },
  {
    name: 'body',
    label: 'job body (the handler: workers/dummy, bench handlers)',
    matches: (f) =>
      (inSource(f.url, 'workers/') && !inSource(f.url, 'workers/runner')) || inSource(f.url, 'bench/handlers/'),
  },
  { name: 'stealing', label: 'work stealing (src/ownership/)', matches: (f) => inSource(f.url, 'src/ownership/') },
  { name: 'add', label: 'BullMQ add (Queue.add, addStandardJob)', matches: (f) => bullmq(f, ADD) },
  // Before fetch: moveToFinished also fetches the next job, and that part is charged to completion.
  {
    name: 'completion',
    label: 'BullMQ completion (moveToFinished)',
    matches: (f) => bullmq(f, COMPLETION),
  },
  { name: 'fetch', label: 'BullMQ fetch (moveToActive, getNextJob)', matches: (f) => bullmq(f, FETCH) },
  {
    name: 'reserve',
    label: 'reserve (src/enqueue/, the reserve script call)',
    matches: (f) =>
      inSource(f.url, 'src/enqueue/') || (inSource(f.url, 'src/ledger/') && f.functionName.startsWith('reserve')),
  },
  { name: 'ledger', label: 'ledger (src/ledger/)', matches: (f) => inSource(f.url, 'src/ledger/') },
  {
    name: 'thread',
    label: 'thread hand-off (piscina, src/execution/pool, workers/runner, MessagePort)',
    matches: (f) =>
      inPackage(f.url, ['piscina']) ||
      inSource(f.url, 'src/execution/pool') ||
      inSource(f.url, 'src/execution/handlers') ||
      inSource(f.url, 'workers/runner') ||
      f.url.includes('messageport') ||
      f.url.startsWith('node:internal/worker') ||
      f.url === 'node:worker_threads' ||
      /^(MessagePort|MessageChannel)\b/.test(f.functionName),
  },
  {
    name: 'http',
    label: 'HTTP (express, body-parser, node:_http_*, src/http/)',
    matches: (f) =>
      inPackage(f.url, HTTP_PACKAGES) ||
      f.url.startsWith('node:_http_') ||
      f.url === 'node:http' ||
      f.url.startsWith('node:internal/http') ||
      (inSource(f.url, 'src/http/') && !inSource(f.url, 'src/http/schemas')),
  },
  {
    name: 'queue',
    label: 'BullMQ, other (processJob, locks), src/queue/, src/execution/consumer',
    matches: (f) =>
      inPackage(f.url, ['bullmq', 'msgpackr', 'cron-parser']) ||
      inSource(f.url, 'src/queue/') ||
      inSource(f.url, 'src/execution/consumer'),
  },
  {
    name: 'redis',
    label: 'Redis client (ioredis, redis-parser, src/redis/)',
    matches: (f) =>
      inPackage(f.url, [
        'ioredis',
        'redis-parser',
        'standard-as-callback',
        'denque',
        'cluster-key-slot',
        'redis-errors',
      ]) || inSource(f.url, 'src/redis/'),
  },
  { name: 'other', label: 'other (timers, streams, promises, start-up)', matches: () => true },
];

const IDLE = '(idle)';

/**
 * Waiting is not work: `(idle)` is the event loop waiting for I/O, and a Piscina thread between jobs
 * blocks in `Atomics.wait`, which the profile shows as time spent in piscina's `atomicsWaitLoop`.
 */
function isWaiting(leaf: CallFrame | undefined): boolean {
  if (!leaf) return false;
  return leaf.functionName === IDLE || (leaf.functionName === 'atomicsWaitLoop' && inPackage(leaf.url, ['piscina']));
}

/** The category of a stack given leaf first: the highest-priority category found on it. */
export function categorize(stack: readonly CallFrame[]): string {
  let best = CATEGORIES.length - 1;
  for (const frame of stack) {
    for (let i = 0; i < best; i += 1) {
      if (CATEGORIES[i]?.matches(frame)) {
        best = i;
        break;
      }
    }
    if (best === 0) break;
  }
  return CATEGORIES[best]?.name ?? 'other';
}

export interface Window {
  /** Microseconds on the monotonic clock (`process.hrtime.bigint() / 1000n`), as profiles stamp. */
  readonly from: number;
  readonly to: number;
}

/**
 * Busy microseconds per category of the samples taken within the window (the whole profile without
 * one). A sample lasts until the next one is taken; waiting samples are left out. This is time on the
 * thread's stack, not CPU time: while the thread is runnable but descheduled, the sample it is taken
 * at grows too.
 */
export function summarize(profile: CpuProfile, window?: Window): Map<string, number> {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const categoryOf = new Map<number, string>();
  const nodeCategory = (id: number): string => {
    let known = categoryOf.get(id);
    if (known === undefined) {
      const stack: CallFrame[] = [];
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const node = byId.get(at);
        if (node) stack.push(node.callFrame);
      }
      known = isWaiting(stack[0]) ? IDLE : categorize(stack);
      categoryOf.set(id, known);
    }
    return known;
  };

  const totals = new Map<string, number>();
  let at = profile.startTime;
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i += 1) {
    at += timeDeltas[i] ?? 0;
    const duration = i + 1 < samples.length ? (timeDeltas[i + 1] ?? 0) : profile.endTime - at;
    if (window && (at < window.from || at >= window.to)) continue;
    const category = nodeCategory(samples[i] ?? 0);
    if (category === IDLE) continue;
    totals.set(category, (totals.get(category) ?? 0) + Math.max(0, duration));
  }
  return totals;
}

/** Adds `more` into `into`, category by category. */
export function addInto(into: Map<string, number>, more: ReadonlyMap<string, number>): Map<string, number> {
  for (const [category, micros] of more) into.set(category, (into.get(category) ?? 0) + micros);
  return into;
}
