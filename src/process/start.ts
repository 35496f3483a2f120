/**
 * A process's HTTP API and its start. The API is composed as soon as the process is built
 * (`prepareHttp`) and listens, on the port the processes share, once the process serves: the primary
 * hands connections to every process that listens, and one that is still starting would turn them
 * away. Only when Redis does not answer soon does it listen early (run.ts): then, while it waits for
 * Redis, takes its worker id's lease and recovers, the port answers, `/livez` says it is up and
 * everything that needs Redis answers 503 `NOT_READY` saying what it waits for (http/not-ready.ts).
 * Once it holds its id and has recovered, `startProcess` starts its background work (a re-forked id
 * runs its recovered jobs as soon as it can) and the API serves. What it returns is what the shutdown
 * stops, in order.
 */
import type { Server } from 'node:http';
import type { Express } from 'express';
import type { Config } from '../config/config.js';
import type { StartupWait } from '../errors.js';
import type { Consumer } from '../execution/consumer.js';
import { createApp } from '../http/app.js';
import type { EventStreams } from '../http/event-streams.js';
import { answerClientErrors } from '../http/client-errors.js';
import type { JobLister } from '../jobs/lister.js';
import { EXPIRY_INTERVAL_MS, type Expirer } from '../expiry/expirer.js';
import { EXIT_PORT_IN_USE, PROCESS_READY_MESSAGE, portInUse } from '../contracts/process-messages.js';
import { every, type Periodic } from '../platform/periodic.js';
import type { Logger } from '../logging/logger.js';
import { reportOutage } from '../logging/outage.js';
import { SCHEDULER_POLL_MS, type Scheduler } from '../schedules/scheduler.js';
import { composeApi } from './api.js';
import { startBackground } from './background.js';
import type { ProcessParts } from './build.js';
import type { Running } from './shutdown.js';

/** How far the process has come: what it waits for, and its consumer once it runs (what /healthz reads). */
export interface Startup {
  waitingFor: StartupWait | undefined;
  consumer: Consumer | undefined;
}

export interface PreparedHttp {
  /** Listens, the first call; later calls give the same server. */
  listen(): Promise<Server>;
  readonly jobList: JobLister;
  /** The open event streams, which the shutdown ends. */
  readonly streams: EventStreams;
  readonly scheduler: Scheduler;
  readonly expirer: Expirer;
}

/** The API, ready to listen; it answers 503 `NOT_READY` to what needs Redis until `startup` says it serves. */
export function prepareHttp(parts: ProcessParts, config: Config, startup: Startup): PreparedHttp {
  const { commands } = parts;
  const api = composeApi({
    config,
    redis: commands,
    queues: parts.queues,
    ledger: parts.ledger,
    groups: parts.groups,
    onHeld: () => parts.releaser.poke(),
    logger: parts.logger,
    metrics: parts.metrics,
    hostMetrics: parts.hostMetrics,
    health: async () => ({
      redis: await commands.ping().then(
        () => true,
        () => false,
      ),
      consumer: startup.consumer?.isRunning() ?? false,
      redisMode: parts.redisMode,
      ...masterOf(parts),
    }),
    jobNames: parts.handlers,
    afterAddStep: parts.afterAddStep,
    afterTickStep: parts.afterTickStep,
    tracing: parts.tracing,
    replicaAcks: parts.replicaAcks,
  });
  const app = createApp({ ...api.app, waitingFor: () => startup.waitingFor });
  let listening: Promise<Server> | undefined;
  return {
    listen: () => (listening ??= serve(app, parts, config)),
    jobList: api.jobList,
    streams: api.streams,
    scheduler: api.scheduler,
    expirer: api.expirer,
  };
}

function masterOf({ master }: ProcessParts): { redisMaster?: string } {
  const current = master?.current();
  return current === undefined ? {} : { redisMaster: current };
}

export async function startProcess(
  parts: ProcessParts,
  config: Config,
  http: PreparedHttp,
  startup: Startup,
  { onLeaseLost }: { onLeaseLost: () => void },
): Promise<Running> {
  const { logger, handlers } = parts;
  startup.waitingFor = 'consumer';
  const background = await startBackground(parts, config, onLeaseLost);
  const sweeping = sweepEvery(http.jobList, config, logger);
  const scheduling = scheduleEvery(http.scheduler, logger);
  const expiring = expireEvery(http.expirer, logger);
  startup.consumer = background.consumer;
  startup.waitingFor = undefined;
  const server = await http.listen();
  logger.info(
    {
      event: 'process.ready',
      port: config.port,
      host: config.host,
      concurrency: config.concurrency,
      handlers: handlers.names,
    },
    'process ready',
  );
  // The primary's one "ready" line waits for every process to serve, not only to listen.
  process.send?.(PROCESS_READY_MESSAGE, () => {});
  return {
    server,
    streams: http.streams,
    consumer: background.consumer,
    leaseKeeper: background.leaseKeeper,
    loops: [...background.loops, scheduling, sweeping, expiring, background.retirement],
  };
}

/** Drops the index entries of jobs that retention removed (see jobs/lister.ts). */
function sweepEvery(jobList: JobLister, config: Config, logger: Logger): Periodic {
  return every(
    config.reconcileIntervalMs,
    () => jobList.sweep(),
    (error) => logger.warn({ event: 'index-sweep.failed', err: error }, 'job index sweep failed'),
  );
}

/**
 * A loop of passes over Redis, whose failures are an outage: logged once per interval, with one line
 * when it ends.
 */
function passesEvery(
  intervalMs: number,
  pass: () => Promise<unknown>,
  logger: Logger,
  { loop, failed, restored }: { loop: string; failed: Line; restored: Line },
): Periodic {
  const outage = reportOutage({ logger, level: 'warn', about: { loop }, error: failed, restored });
  return every(
    intervalMs,
    async () => {
      await pass();
      outage.restored();
    },
    (error) => outage.error(error),
  );
}

interface Line {
  readonly event: string;
  readonly msg: string;
}

/** Looks for due schedules a few times a second (see schedules/scheduler.ts). */
function scheduleEvery(scheduler: Scheduler, logger: Logger): Periodic {
  return passesEvery(SCHEDULER_POLL_MS, () => scheduler.pass(), logger, {
    loop: 'scheduler',
    failed: { event: 'schedule.look-failed', msg: 'could not look for due schedules' },
    restored: { event: 'schedule.look-restored', msg: 'looking for due schedules again' },
  });
}

/**
 * Expires due jobs (see expiry/expirer.ts). Its stop waits for the pass under way, so that a job it
 * took out also gives its slot back.
 */
function expireEvery(expirer: Expirer, logger: Logger): { stop(): Promise<void> } {
  const periodic = passesEvery(EXPIRY_INTERVAL_MS, () => expirer.pass(), logger, {
    loop: 'expirer',
    failed: { event: 'expiry.failed', msg: 'expiring due jobs failed; trying again' },
    restored: { event: 'expiry.restored', msg: 'expiring due jobs again' },
  });
  return {
    async stop() {
      periodic.stop();
      await expirer.settle();
    },
  };
}

async function serve(app: Express, { logger }: ProcessParts, config: Config): Promise<Server> {
  const server = await listen(app.listen.bind(app), config.port, config.host).catch((error: unknown) => {
    if ((error as { code?: unknown }).code !== 'EADDRINUSE') throw error;
    // Taken since the primary checked it: forking this process again would not help.
    logger.fatal(
      { event: 'http.port-in-use', port: config.port, host: config.host },
      portInUse(config.port, config.host),
    );
    process.exit(EXIT_PORT_IN_USE);
  });
  answerClientErrors(server, logger);
  return server;
}

function listen(
  listenFn: (port: number, host: string, callback: (error?: Error) => void) => Server,
  port: number,
  host: string,
): Promise<Server> {
  return new Promise((resolveListen, rejectListen) => {
    const server = listenFn(port, host, (error) => (error ? rejectListen(error) : resolveListen(server)));
    server.once('error', rejectListen);
  });
}
