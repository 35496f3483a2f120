/**
 * Starting a process that holds its worker id and has recovered: its background work first (a
 * re-forked id runs its recovered jobs as soon as it can), then its HTTP API (api.ts), listening on
 * the port the processes share. What it returns is what the shutdown stops, in order.
 */
import type { Server } from 'node:http';
import type { Express } from 'express';
import type { Config } from '../config/config.js';
import { createApp } from '../http/app.js';
import { answerClientErrors } from '../http/client-errors.js';
import type { JobLister } from '../jobs/lister.js';
import { EXIT_PORT_IN_USE, portInUse } from '../contracts/process-messages.js';
import { every, type Periodic } from '../platform/periodic.js';
import type { Logger } from '../logging/logger.js';
import { composeApi } from './api.js';
import { startBackground } from './background.js';
import type { ProcessParts } from './build.js';
import type { Running } from './shutdown.js';

export async function startProcess(
  parts: ProcessParts,
  config: Config,
  { onLeaseLost }: { onLeaseLost: () => void },
): Promise<Running> {
  const { commands, logger } = parts;
  const background = await startBackground(parts, config, onLeaseLost);
  const api = composeApi({
    config,
    redis: commands,
    queues: parts.queues,
    ledger: parts.ledger,
    logger,
    metrics: parts.metrics,
    hostMetrics: parts.hostMetrics,
    health: async () => ({
      redis: await commands.ping().then(
        () => true,
        () => false,
      ),
      consumer: background.consumer.isRunning(),
    }),
    afterAddStep: parts.afterAddStep,
  });
  const sweeping = sweepEvery(api.jobList, config, logger);
  const server = await serve(createApp(api.app), parts, config);
  return {
    server,
    streams: api.streams,
    consumer: background.consumer,
    leaseKeeper: background.leaseKeeper,
    loops: [...background.loops, sweeping, background.retirement],
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

async function serve(app: Express, { logger, handlers }: ProcessParts, config: Config): Promise<Server> {
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
