/**
 * The dispatcher's undo path against a real Redis, one server or a cluster: when a step of an enqueue
 * fails, what it may have left behind is undone, and an undo that fails too is logged at warn with the
 * task's token and counted by operation in `bullpen_undo_failures_total`. The failures are real: the
 * connections the steps use are closed at the point where the step must fail.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Cluster } from 'ioredis';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { QueueUnavailableError } from '../../src/errors.js';
import { createLedger } from '../../src/ledger/ledger.js';
import { createProcessMetrics, UNDO_OPERATIONS, type ProcessMetrics } from '../../src/metrics/process-metrics.js';
import { jobOptionsFrom } from '../../src/queue/job-options.js';
import { createQueueRegistry, type QueueRegistry } from '../../src/queue/queues.js';
import { jobIndexKey, ledgerKeys } from '../../src/contracts/keys.js';
import {
  closeConnection,
  createRedisConnection,
  waitUntilReady,
  type RedisClient,
} from '../../src/redis/connections.js';
import { createDispatcher, type DispatcherOptions } from '../../src/enqueue/dispatcher.js';
import { reservationsLeft } from '../support/jobs.js';
import { joinWorkers } from '../support/ledger.js';
import { parseMetrics, total } from '../support/prom-text.js';
import { captureLogger } from '../support/capture-logger.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';
import { waitFor } from '../support/wait.js';

const config = loadConfig({ QUEUE_PREFIX: 'undo-test' });
const WORKER = 'undo-0';
/** The worker is joined once, with a 60 s lease: it must count as live for as long, however slow the run. */
const LIVE_MS = 60_000;

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly operation?: string;
  readonly token?: string;
  readonly jobId?: string;
  readonly err?: { readonly message?: string };
}

const WARN = 40;

let redis: ModeRedis;
/** Connections made by a test, closed after it whatever their state. */
const connections: RedisClient[] = [];
const registries: QueueRegistry[] = [];
let logs: LogLine[];
let metrics: ProcessMetrics;

async function connect(): Promise<RedisClient> {
  const connection = createRedisConnection(redis.target, 'command', pino({ level: 'silent' }), {
    commandTimeoutMs: 2_000,
  });
  connections.push(connection);
  await waitUntilReady(connection, 10_000);
  return connection;
}

/**
 * A connection that was open and is now closed: every command on it fails at once. Closed with QUIT,
 * after which every part of it has ended: a cluster client closed with `disconnect` ends before its
 * node connections, and ioredis sets it back to `close` as each of them ends; from then on BullMQ
 * waits for it to be ready again, for ever, instead of failing.
 */
async function closedConnection(): Promise<RedisClient> {
  const connection = await connect();
  const parts = connection instanceof Cluster ? [connection, ...connection.nodes('all')] : [connection];
  const ended = Promise.all(parts.map((part) => new Promise((resolve) => part.once('end', resolve))));
  await connection.quit();
  await ended;
  return connection;
}

function queuesOn(connection: RedisClient): QueueRegistry {
  const queues = createQueueRegistry({ connection, prefix: config.prefix });
  registries.push(queues);
  // A queue made on a closed connection also emits the failure as an event, which BullMQ prints to
  // stderr when nobody listens; here it would only clutter the test's output.
  queues.forWorker(WORKER).on('error', () => {});
  return queues;
}

function dispatcherWith(
  ledger: DispatcherOptions['ledger'],
  queues: DispatcherOptions['queues'],
  connection: DispatcherOptions['connection'],
) {
  const { logger } = captureLogger(logs);
  return createDispatcher({
    ledger,
    // Nothing here is held: these ledgers place every task (or refuse it).
    groups: { holdOn: () => assert.fail('no task is held here') },
    onHeld: () => {},
    queues,
    connection,
    jobOptions: jobOptionsFrom(config),
    logger,
    metrics,
    indexKey: jobIndexKey(config.prefix),
    expiriesKey: ledgerKeys(config.prefix).expiries,
    retryAfterSeconds: 1,
  });
}

async function undoFailures(): Promise<Record<string, number>> {
  const samples = parseMetrics(await metrics.registry.metrics());
  return Object.fromEntries(
    UNDO_OPERATIONS.map((operation) => [operation, total(samples, 'bullpen_undo_failures_total', { operation })]),
  );
}

const warnings = (operation: string) => logs.filter((line) => line.level === WARN && line.operation === operation);

describe('dispatcher: undoing a refused enqueue', () => {
  before(async () => {
    redis = await startTestRedis();
    await joinWorkers(await connect(), config.prefix, [WORKER], 4);
  });
  beforeEach(() => {
    logs = [];
    metrics = createProcessMetrics({
      workerId: WORKER,
      hostId: 'undo',
      knownJobNames: [],
      pool: { threads: 1, queueSize: 0 },
    });
  });
  after(async () => {
    for (const queues of registries) await queues.close();
    for (const connection of connections) await closeConnection(connection);
    await redis?.stop();
  });

  test('every undo operation is counted from the start, at 0', async () => {
    assert.deepEqual(await undoFailures(), { cancel_reservation: 0, remove_job: 0, release_reservation: 0 });
  });

  test('a reservation that failed and whose cancel fails too: logged with its token and counted', async () => {
    const dead = await closedConnection();
    const ledger = createLedger({ redis: dead, prefix: config.prefix, workerTtlMs: LIVE_MS });
    const healthy = await connect();
    const dispatcher = dispatcherWith(ledger, queuesOn(healthy), healthy);
    await assert.rejects(dispatcher.dispatch({ jobName: 'refused', data: {} }), QueueUnavailableError);
    const [warning] = await waitFor(
      () => (warnings('cancel_reservation').length > 0 ? warnings('cancel_reservation') : undefined),
      {
        what: 'the failed cancel to be logged',
      },
    );
    assert.match(warning?.token ?? '', /^[A-Za-z0-9_-]{22}$/, 'the line names the token');
    assert.match(warning?.err?.message ?? '', /Connection is closed/);
    assert.deepEqual(await undoFailures(), { cancel_reservation: 1, remove_job: 0, release_reservation: 0 });
  });

  test('an add that failed: the job removal fails and is counted, the release succeeds and frees the slot', async () => {
    const before = await reservationsLeft(redis.client, config.prefix);
    const ledger = createLedger({ redis: await connect(), prefix: config.prefix, workerTtlMs: LIVE_MS });
    const closed = await closedConnection();
    const dispatcher = dispatcherWith(ledger, queuesOn(closed), closed);
    await assert.rejects(dispatcher.dispatch({ jobName: 'refused', data: {} }), QueueUnavailableError);
    const [warning] = await waitFor(() => (warnings('remove_job').length > 0 ? warnings('remove_job') : undefined), {
      what: 'the failed removal to be logged',
    });
    assert.match(warning?.token ?? '', /^[A-Za-z0-9_-]{22}$/);
    assert.equal(warning?.jobId, `${WORKER}~${warning?.token ?? ''}`, 'the line names the job id');
    assert.deepEqual(await undoFailures(), { cancel_reservation: 0, remove_job: 1, release_reservation: 0 });
    assert.equal(await reservationsLeft(redis.client, config.prefix), before, 'the reservation was released');
  });

  test('an add that failed and a ledger that fails right after the reservation: both undos logged and counted', async () => {
    const before = await reservationsLeft(redis.client, config.prefix);
    const ledgerConnection = await connect();
    const ledger = createLedger({ redis: ledgerConnection, prefix: config.prefix, workerTtlMs: LIVE_MS });
    const closed = await closedConnection();
    const broken = queuesOn(closed);
    // The queue is looked up once the slot is reserved: the ledger's connection goes down right then.
    const dispatcher = dispatcherWith(
      ledger,
      {
        forWorker: (workerId) => {
          ledgerConnection.disconnect();
          return broken.forWorker(workerId);
        },
      },
      closed,
    );
    await assert.rejects(dispatcher.dispatch({ jobName: 'refused', data: {} }), QueueUnavailableError);
    await waitFor(() => warnings('remove_job').length > 0 && warnings('release_reservation').length > 0, {
      what: 'both failed undos to be logged',
    });
    const [release] = warnings('release_reservation');
    assert.match(release?.token ?? '', /^[A-Za-z0-9_-]{22}$/);
    assert.equal(warnings('remove_job')[0]?.token, release?.token, 'both lines name the same token');
    assert.deepEqual(await undoFailures(), { cancel_reservation: 0, remove_job: 1, release_reservation: 1 });
    // What the failed release left behind is there for the reconciler to free.
    assert.equal(await reservationsLeft(redis.client, config.prefix), before + 1);
  });
});
