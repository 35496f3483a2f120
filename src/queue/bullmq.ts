/**
 * BullMQ's classes, loaded with `require`. An ES module that imports a CommonJS package has Node scan
 * the package's source for its export names, and BullMQ's index re-exports some hundred files: the scan
 * doubles its load, about 110 ms of CPU at every process start. The types are the package's own.
 */
import { createRequire } from 'node:module';
import type * as BullMQ from 'bullmq';

const bullmq = createRequire(import.meta.url)('bullmq') as typeof BullMQ;

export const { DelayedError, Job, Queue, UnrecoverableError, Worker } = bullmq;
export type Job = BullMQ.Job;
export type Queue = BullMQ.Queue;
export type Worker = BullMQ.Worker;
export type { JobsOptions } from 'bullmq';
