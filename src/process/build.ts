/**
 * Building one process: its Redis connections and everything made on them, its thread pool and
 * metrics. Nothing here waits for Redis, nor starts consuming or serving: run.ts opens the HTTP API
 * at once, waits for Redis, and start.ts starts consuming once the process holds its worker id's
 * lease and has recovered what its predecessor left (recovery.ts).
 */
import { fileURLToPath } from 'node:url';
import type { RedisClient } from '../redis/connections.js';
import type { RedisTarget } from '../redis/target.js';
import type { Config } from '../config/config.js';
import { createHandlerRegistry, type HandlerRegistry } from '../execution/handlers.js';
import { createJobPool, type JobPool } from '../execution/pool.js';
import { createLeases, holderName, type Leases } from '../ledger/lease.js';
import { createLedger, type Ledger, type WorkerInfo } from '../ledger/ledger.js';
import { createMoveLedger, type MoveLedger } from '../ledger/moves.js';
import { createReconciler, type Reconciler } from '../ownership/reconciler.js';
import type { Logger } from '../logging/logger.js';
import type { Tracing } from '../tracing/tracing.js';
import { createHostMetricsClient, type HostMetricsClient } from '../metrics/host-metrics-client.js';
import { createProcessMetrics, type ProcessMetrics } from '../metrics/process-metrics.js';
import { createMover, type Mover } from '../ownership/mover.js';
import { createRetirer, type Retirer } from '../ownership/retirer.js';
import { workerIdFor } from '../contracts/names.js';
import { createQueueRegistry, type QueueRegistry } from '../queue/queues.js';
import { createTransfer, type Transfer } from '../queue/transfer.js';
import { createRedisConnection } from '../redis/connections.js';
import { createReplicaAcks, type ReplicaAcks } from '../redis/replica-acks.js';
import { Redis } from '../redis/ioredis.js';
import { watchMaster, type MasterWatch } from '../redis/master-watch.js';
import { groupLedgerFor, ledgerOptionsFrom } from './ledger-options.js';
import type { GroupLedger } from '../ledger/groups.js';
import { createReleaser, type Releaser } from '../fairness/releaser.js';
import { ledgerKeys } from '../contracts/keys.js';

const WORKERS_DIRECTORY = new URL('../../workers/', import.meta.url);
/** Longer than the primary's own wait for the slowest process, so that it answers first. */
const METRICS_TIMEOUT_MS = 5_000;
/** A moved job's location outlives any job: the longest retention, plus the longest delay. */
const LOCATION_MARGIN_MS = 30 * 24 * 3_600_000;

export interface ProcessParts {
  readonly workerId: string;
  /** Spans of this process's requests and jobs; does nothing when tracing is off. */
  readonly tracing: Tracing;
  readonly info: WorkerInfo;
  readonly logger: Logger;
  /** Fail-fast connection for requests (reserve, add, read). */
  readonly commands: RedisClient;
  /** BullMQ's consumer and every ledger update of running jobs; waits out outages. */
  readonly consumerConnection: RedisClient;
  /** Hears cancels of jobs that may run here. */
  readonly subscriber: RedisClient;
  /** Durable acceptance only (ENQUEUE_MIN_REPLICAS): the connection its WAITs block. */
  readonly replicaConnection: RedisClient | undefined;
  /** Durable acceptance: confirms that enough replicas hold an add before it is answered. */
  readonly replicaAcks: ReplicaAcks | undefined;
  /** One Redis, a Redis Cluster, or a master found through Redis Sentinel: what /healthz names. */
  readonly redisMode: RedisTarget['kind'];
  /** Through Redis Sentinel, the master the request connection reaches now; undefined otherwise. */
  readonly master: MasterWatch | undefined;
  /** The ledger on the request connection: reserve, cancel, reads. */
  readonly ledger: Ledger;
  /** The ledger on the consumer's connection: running jobs' updates stay ordered with BullMQ's. */
  readonly jobLedger: Ledger;
  /** The group ledger on the request connection: holds, settings, counts. */
  readonly groups: GroupLedger;
  /** The group ledger on the consumer's connection: releases, and the delayed router's holds. */
  readonly jobGroups: GroupLedger;
  /** Hands held jobs to workers with room, in fair order. */
  readonly releaser: Releaser;
  readonly leases: Leases;
  readonly moves: MoveLedger;
  readonly mover: Mover;
  /**
   * Fault tests only (BULLPEN_KILL_HOOK): the hook after each step of a slot-by-slot add, by the
   * dispatcher or the delayed router.
   */
  readonly afterAddStep: ((step: string) => Promise<void>) | undefined;
  /** Fault tests only (BULLPEN_KILL_HOOK): the hook after a tick's job was made, before it is recorded. */
  readonly afterTickStep: ((step: string) => Promise<void>) | undefined;
  readonly retirer: Retirer;
  readonly queues: QueueRegistry;
  /** Queue handles on the consumer's connection, for moves and retirement. */
  readonly moveQueues: QueueRegistry;
  readonly transfer: Transfer;
  readonly handlers: HandlerRegistry;
  readonly pool: JobPool;
  readonly metrics: ProcessMetrics;
  readonly hostMetrics: HostMetricsClient;
  readonly reconciler: Reconciler;
  /** How long a job's location record is kept: longer than any job stays in a queue. */
  readonly locationTtlMs: number;
  /** Tokens of the jobs running in this process; the consumer fills it, the reconciler reads it. */
  readonly running: Set<string>;
}

/** Every Redis connection of a process, as it waits for them at start and closes them at the end. */
export function connectionsOf(
  parts: Pick<ProcessParts, 'commands' | 'consumerConnection' | 'subscriber' | 'replicaConnection'>,
): RedisClient[] {
  const { commands, consumerConnection, subscriber, replicaConnection } = parts;
  return [commands, consumerConnection, subscriber, ...(replicaConnection ? [replicaConnection] : [])];
}

export function buildProcess(
  config: Config,
  redis: RedisTarget,
  index: number,
  baseLogger: Logger,
  tracing: Tracing,
): ProcessParts {
  const workerId = workerIdFor(config.hostId, index);
  const logger = baseLogger.child({ workerId });
  const connections = connect(redis, config, logger);
  const built = {
    ...connections,
    ...buildRecords(config, workerId, connections),
    ...buildQueues(config, connections),
    ...buildExecution(config, workerId, logger),
  };
  const running = new Set<string>();
  const { replicaConnection } = connections;
  return {
    tracing,
    replicaAcks:
      replicaConnection &&
      createReplicaAcks({
        connection: replicaConnection,
        channel: `${config.prefix}:replica-ack`,
        minReplicas: config.enqueueMinReplicas,
        timeoutMs: config.enqueueReplicaTimeoutMs,
      }),
    workerId,
    redisMode: redis.kind,
    master: redis.kind === 'sentinel' ? watchPromotions(connections.commands, built.metrics, logger) : undefined,
    info: {
      id: workerId,
      hostId: config.hostId,
      pid: process.pid,
      concurrency: config.concurrency,
      startedAt: Date.now(),
    },
    logger,
    ...built,
    ...buildMoving(config, logger, { ...built, tracing }),
    releaser: createReleaser({
      groups: built.jobGroups,
      ledger: built.jobLedger,
      queues: built.moveQueues,
      connection: built.consumerConnection,
      locationKey: (token) => ledgerKeys(config.prefix).location(token),
      reservationsKey: (id) => ledgerKeys(config.prefix).jobs(id),
      locationTtlMs: built.locationTtlMs,
      logger,
      onReleased: (releasedTo, jobName) => built.metrics.jobEnqueued(releasedTo, jobName),
      afterStep: config.killHook
        ? killWhenArmed(built.consumerConnection, `${config.prefix}:test:kill-after-release-step`)
        : undefined,
    }),
    afterAddStep: config.killHook
      ? killWhenArmed(built.consumerConnection, `${config.prefix}:test:kill-after-add-step`)
      : undefined,
    afterTickStep: config.killHook
      ? killWhenArmed(built.consumerConnection, `${config.prefix}:test:kill-after-tick-step`)
      : undefined,
    reconciler: createReconciler({
      workerId,
      redis: built.commands,
      queue: built.queues.forWorker(workerId),
      ledger: built.ledger,
      running,
      releasing: (tokens) => built.groups.releasingAmong(tokens),
      graceMs: config.reservationGraceMs,
      retention: config.retention,
      logger,
    }),
    running,
  };
}

/** Every promotion this process's requests follow is logged and counted, once per process. */
function watchPromotions(commands: RedisClient, metrics: ProcessMetrics, logger: Logger): MasterWatch | undefined {
  if (!(commands instanceof Redis)) return undefined;
  return watchMaster(commands, (from, to) => {
    metrics.masterChanged();
    logger.warn({ event: 'redis.master-changed', from, to }, `Redis master changed from ${from} to ${to}`);
  });
}

type Connections = Pick<ProcessParts, 'commands' | 'consumerConnection' | 'subscriber' | 'replicaConnection'>;

/** The connections, connecting in the background: the start-up waits for them (wait-for-redis.ts). */
function connect(redis: RedisTarget, config: Config, logger: Logger): Connections {
  const quietUntilReady = true;
  const commands = createRedisConnection(redis, 'command', logger, {
    commandTimeoutMs: config.commandTimeoutMs,
    quietUntilReady,
  });
  const consumerConnection = createRedisConnection(redis, 'consumer', logger, { quietUntilReady });
  const subscriber = createRedisConnection(redis, 'subscriber', logger, { quietUntilReady });
  // A request connection whose time-out leaves room for the WAIT, which blocks it that long.
  const replicaConnection =
    config.enqueueMinReplicas > 0
      ? createRedisConnection(redis, 'command', logger, {
          commandTimeoutMs: config.enqueueReplicaTimeoutMs + config.commandTimeoutMs,
          quietUntilReady,
        })
      : undefined;
  return { commands, consumerConnection, subscriber, replicaConnection };
}

/** The process's Redis records: the load ledger (on each connection), the id's lease, the moves. */
function buildRecords(
  config: Config,
  workerId: string,
  { commands, consumerConnection }: Connections,
): Pick<ProcessParts, 'ledger' | 'jobLedger' | 'groups' | 'jobGroups' | 'leases' | 'moves' | 'locationTtlMs'> {
  const instance = config.instanceId ?? `solo-${process.pid}`;
  const owner = holderName(instance, process.pid);
  const ledgerOptions = ledgerOptionsFrom(config);
  const ledger = createLedger({ redis: commands, ...ledgerOptions });
  const jobLedger = createLedger({ redis: consumerConnection, ...ledgerOptions });
  // Leases and moves go through the consumer's connection: they must not fail for a blip, and each
  // of their steps can be repeated when one is sent twice.
  const leases = createLeases({
    redis: consumerConnection,
    prefix: config.prefix,
    instance,
    owner,
    ttlMs: config.workerTtlMs,
    retireMs: config.workerRetireMs,
  });
  const retentionMs = Math.max(config.retention.completed.ageSeconds, config.retention.failed.ageSeconds) * 1000;
  const locationTtlMs = retentionMs + LOCATION_MARGIN_MS;
  const moves = createMoveLedger({
    redis: consumerConnection,
    prefix: config.prefix,
    workerId,
    owner,
    workerTtlMs: config.workerTtlMs,
    locationTtlMs,
  });
  return {
    ledger,
    jobLedger,
    groups: groupLedgerFor(config, commands, ledger),
    jobGroups: groupLedgerFor(config, consumerConnection, jobLedger),
    leases,
    moves,
    locationTtlMs,
  };
}

function buildQueues(
  config: Config,
  { commands, consumerConnection }: Connections,
): Pick<ProcessParts, 'queues' | 'moveQueues' | 'transfer'> {
  const queues = createQueueRegistry({ connection: commands, prefix: config.prefix });
  const moveQueues = createQueueRegistry({ connection: consumerConnection, prefix: config.prefix });
  return { queues, moveQueues, transfer: createTransfer({ redis: consumerConnection, queues: moveQueues }) };
}

/** The handler files of HANDLERS_DIR (or the built-in folder) and the names the dummy runs. */
export function createHandlers(config: Pick<Config, 'handlersDir' | 'dummyJobNames'>): HandlerRegistry {
  return createHandlerRegistry({
    directory: config.handlersDir ?? fileURLToPath(new URL('handlers/', WORKERS_DIRECTORY)),
    fallback: fileURLToPath(new URL('dummy.js', WORKERS_DIRECTORY)),
    dummyJobNames: config.dummyJobNames,
  });
}

/** What runs the jobs (the handlers, the thread pool) and what counts them. */
function buildExecution(
  config: Config,
  workerId: string,
  logger: Logger,
): Pick<ProcessParts, 'handlers' | 'pool' | 'metrics' | 'hostMetrics'> {
  const handlers = createHandlers(config);
  const pool = createJobPool({
    runnerFile: fileURLToPath(new URL('runner.js', WORKERS_DIRECTORY)),
    threads: config.concurrency,
    warmThreads: config.warmThreads,
    memoryLimitMb: config.threadMemoryLimitMb,
  });
  const metrics = createProcessMetrics({ workerId, hostId: config.hostId, knownJobNames: handlers.labelled, pool });
  const hostMetrics = createHostMetricsClient({
    registry: metrics.registry,
    timeoutMs: METRICS_TIMEOUT_MS,
    channel: process,
    logger,
  });
  return { handlers, pool, metrics, hostMetrics };
}

/** What moves jobs from one worker's queue to another's: stealing and retirement both use the mover. */
function buildMoving(
  config: Config,
  logger: Logger,
  built: Connections &
    Pick<ProcessParts, 'jobLedger' | 'leases' | 'moves' | 'moveQueues' | 'transfer' | 'metrics' | 'tracing'>,
): Pick<ProcessParts, 'mover' | 'retirer'> {
  const { consumerConnection, metrics } = built;
  const mover = createMover({
    ledger: built.moves,
    transfer: built.transfer,
    onMoved: (reason) => metrics.jobMoved(reason),
    tracing: built.tracing,
    ...(config.killHook
      ? { afterStep: killWhenArmed(consumerConnection, `${config.prefix}:test:kill-after-move-step`) }
      : {}),
  });
  const retirer = createRetirer({
    redis: consumerConnection,
    leases: built.leases,
    ledger: built.jobLedger,
    moves: built.moves,
    queues: built.moveQueues,
    transfer: built.transfer,
    mover,
    retention: config.retention,
    onRetired: () => metrics.workerRetired(),
    logger,
  });
  return { mover, retirer };
}

/**
 * The fault tests' kill -9 after one step of a move, or of an add. The test arms it by writing the
 * step to `key`; the first process to reach that step takes the arming away and dies, so the
 * processes that recover the work are not killed in turn, and one running service serves every
 * step's scenario. (An arming read at another step is put back: the tests arm one step at a time.)
 */
function killWhenArmed(redis: RedisClient, key: string): (reached: string) => Promise<void> {
  return async (reached) => {
    const armed = await redis.getdel(key);
    if (armed === null) return;
    if (armed === reached) process.kill(process.pid, 'SIGKILL');
    else await redis.set(key, armed, 'NX');
  };
}
