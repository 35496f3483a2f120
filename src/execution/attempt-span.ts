/**
 * The spans of a job's attempts (issue 24): each attempt is a CONSUMER span of its own, child of the
 * span that enqueued the job (its stored trace context), in whichever process runs it, so that a
 * retry or a re-run after a move shows as one more attempt in the same trace; the body's run in its
 * thread is a span inside it, with the thread's id and its outcome. With tracing off the processor
 * is used as it is.
 */
import type { Job } from '../queue/bullmq.js';
import { traceOption } from '../contracts/stored-job.js';
import { queueNameFor } from '../contracts/names.js';
import { messagingAttributes, type Tracing } from '../tracing/tracing.js';

type Processor = (job: Job, lock?: string, cancelled?: AbortSignal) => Promise<unknown>;

/** The processor, each call of which runs in an attempt's span. */
export function tracedAttempts(tracing: Tracing, workerId: string, processor: Processor): Processor {
  if (!tracing.enabled) return processor;
  const destination = queueNameFor(workerId);
  // Three parameters, as BullMQ hands the cancel signal only to a processor that declares it.
  return (job, lock, cancelled) =>
    tracing.inSpan(
      `process ${destination}`,
      {
        kind: 'consumer',
        parent: traceOption(job.opts as Record<string, unknown>),
        attributes: {
          ...messagingAttributes('process', destination, job.id),
          'bullpen.worker': workerId,
          'bullpen.job.name': job.name,
          'bullpen.attempt': Math.max(1, job.attemptsStarted),
        },
      },
      () => processor(job, lock, cancelled),
    );
}

/** Runs the body in a span of its own: its thread, its run time, and how it ended. */
export function runInSpan<T>(
  tracing: Tracing,
  jobName: string,
  run: (onThread: ((threadId: number) => void) | undefined) => Promise<T>,
): Promise<T> {
  if (!tracing.enabled) return run(undefined);
  return tracing.inSpan(`run ${jobName}`, { kind: 'internal' }, async (span) => {
    const startedAt = performance.now();
    const ended = (outcome: string) =>
      span.setAttributes({ 'bullpen.outcome': outcome, 'bullpen.run.duration_ms': performance.now() - startedAt });
    try {
      const result = await run((threadId) => span.setAttributes({ 'thread.id': threadId }));
      ended('completed');
      return result;
    } catch (error) {
      ended('failed');
      throw error;
    }
  });
}
