/**
 * The HTTP API of one process, separate from the server that listens so that tests can run
 * it on any port. It only wires routes to the narrow services it is given.
 */
import express, { type Express } from 'express';
import type { Logger } from '../logging/logger.js';
import type { JobReader } from '../jobs/reader.js';
import type { JobLister } from '../jobs/lister.js';
import type { Canceller } from '../cancel/canceller.js';
import type { IdempotencyStore } from '../idempotency/store.js';
import type { Dispatcher } from '../enqueue/dispatcher.js';
import type { ReplicaAcks } from '../redis/replica-acks.js';
import type { AdminUi } from './admin/admin-ui.js';
import type { EventStreams } from './event-streams.js';
import { requireApiKey } from './auth.js';
import { errorHandler, notFound, optionsHandler } from './errors.js';
import { refuseUntilReady } from './not-ready.js';
import type { TaskLimits } from './schemas.js';
import type { ProcessMetrics } from '../metrics/process-metrics.js';
import { jobEventsRouter } from './routes/job-events.js';
import { jobListRouter } from './routes/job-list.js';
import { groupsRouter, type GroupRouteOptions } from './routes/groups.js';
import { schedulesRouter, type ScheduleRouteOptions } from './routes/schedules.js';
import { jobsRouter } from './routes/jobs.js';
import { metricsRouter, requestTimer } from './routes/metrics.js';
import { openApiRouter } from './openapi/router.js';
import { statusRouter, type StatusRouteOptions } from './routes/status.js';
import { tasksRouter, type JobNames } from './routes/tasks.js';
import { requestSpans } from './request-span.js';
import type { Tracing } from '../tracing/tracing.js';

export interface AppOptions extends StatusRouteOptions {
  readonly dispatcher: Dispatcher;
  readonly idempotency: IdempotencyStore;
  /** Durable acceptance: a replayed answer is confirmed on enough replicas, as a new one is. */
  readonly replicaAcks?: ReplicaAcks | undefined;
  readonly jobs: JobReader;
  /** The open `GET /jobs/:id/events` streams: capped, and ended when the process stops. */
  readonly streams: EventStreams;
  /** `GET /jobs`: pages of the job index. */
  readonly jobList: Pick<JobLister, 'list'>;
  readonly canceller: Canceller;
  /** `/groups`: tenant groups' settings and counts (issue 22). */
  readonly groups: GroupRouteOptions;
  /** `/schedules`: recurring jobs (issue 23). */
  readonly schedules: Pick<ScheduleRouteOptions, 'store' | 'minIntervalMs'>;
  readonly logger: Logger;
  readonly bodyLimitBytes: number;
  /** `POST /enqueue-tasks`: most tasks, and largest body. */
  readonly bulk: { readonly maxTasks: number; readonly bodyLimitBytes: number };
  readonly limits: TaskLimits;
  /** The job names a task may have; any other is refused with 422 (see execution/handlers.ts). */
  readonly jobNames: JobNames;
  /**
   * When set, every route but /livez, /healthz (and /metrics when public) needs `Authorization:
   * Bearer`; the browser pages take HTTP Basic too (see auth.ts).
   */
  readonly apiKey: string | undefined;
  readonly metricsPublic: boolean;
  readonly metrics: Pick<ProcessMetrics, 'httpRequest' | 'jobEnqueued'>;
  readonly scrape: () => Promise<string>;
  /** The read-only queue dashboard, mounted at its path; undefined when ADMIN_UI is off. */
  readonly admin: AdminUi | undefined;
  /** Spans of the requests (request-span.ts); none when tracing is off. */
  readonly tracing?: Tracing | undefined;
}

export function createApp(options: AppOptions): Express {
  const { logger, bodyLimitBytes } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestTimer(options.metrics, { admin: options.admin !== undefined }));
  app.use(optionsHandler);
  const publicPaths = ['/livez', '/healthz', ...(options.metricsPublic ? ['/metrics'] : [])];
  if (options.apiKey !== undefined) app.use(requireApiKey(options.apiKey, publicPaths));
  if (options.waitingFor) app.use(refuseUntilReady(options.waitingFor));
  if (options.admin) app.use(options.admin.path, options.admin.router); // before the body parsers: it reads none
  // A bulk request may carry many tasks: its body has a limit of its own. The parser below then
  // finds the body read and leaves it.
  app.use('/enqueue-tasks', express.json({ limit: options.bulk.bodyLimitBytes, strict: false }));
  app.use(express.json({ limit: bodyLimitBytes, strict: false }));
  // After the body is read: the parser calls on from the socket's callbacks, outside the span's context.
  if (options.tracing?.enabled === true) app.use(requestSpans(options.tracing));
  app.use(
    tasksRouter({
      dispatcher: options.dispatcher,
      idempotency: options.idempotency,
      replicaAcks: options.replicaAcks,
      jobs: options.jobs,
      bulkMax: options.bulk.maxTasks,
      limits: options.limits,
      jobNames: options.jobNames,
      logger,
      onEnqueued: options.metrics.jobEnqueued,
    }),
  );
  app.use(jobListRouter({ lister: options.jobList }));
  app.use(jobsRouter({ jobs: options.jobs, canceller: options.canceller }));
  app.use(jobEventsRouter({ jobs: options.jobs, streams: options.streams, logger }));
  app.use(groupsRouter(options.groups));
  app.use(schedulesRouter({ ...options.schedules, limits: options.limits, jobNames: options.jobNames }));
  app.use(statusRouter({ snapshot: options.snapshot, health: options.health, waitingFor: options.waitingFor }));
  app.use(metricsRouter({ scrape: options.scrape }));
  app.use(
    openApiRouter({
      limits: options.limits,
      bulkMax: options.bulk.maxTasks,
      bodyLimitBytes,
      bulkBodyLimitBytes: options.bulk.bodyLimitBytes,
      apiKeyRequired: options.apiKey !== undefined,
      metricsPublic: options.metricsPublic,
      scheduleMinIntervalMs: options.schedules.minIntervalMs,
    }),
  );
  app.use(notFound);
  app.use(errorHandler({ logger, bodyLimitBytes }));
  return app;
}
