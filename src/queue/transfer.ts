/**
 * The queue's side of moving a job between workers' queues. BullMQ has no such operation: a job is a
 * hash plus entries in its queue's lists, all under that queue's name. A move therefore takes the job
 * out of the source lists (keeping the hash as the copy to finish from), adds it to the target queue
 * with BullMQ's own add, and deletes the source copy last. Each step can be repeated: a move cut
 * short by a crash is driven to its end by whoever finds its intent.
 *
 * A job that already ran (a retry, or a run cut short by a crash) keeps its attempt counts: it is
 * added parked, its counts are written, and only then is it released to run.
 */
import { fileURLToPath } from 'node:url';
import { Job, type JobsOptions } from './bullmq.js';
import type { RedisClient } from '../redis/connections.js';
import { scriptsIn } from '../redis/scripts.js';
import type { QueueRegistry } from './queues.js';
import { traceOption, type StoredTrace } from '../contracts/stored-job.js';
import { isRecord } from '../platform/is-record.js';

const LUA_DIRECTORY = fileURLToPath(new URL('./lua/', import.meta.url));
/** Far enough away that a parked job never becomes due by itself. */
const PARK_DELAY_MS = 365 * 24 * 3_600_000;

export interface Detached {
  readonly from: 'wait' | 'prioritized' | 'delayed';
  /** When a delayed job is due (ms since the epoch); 0 otherwise. */
  readonly dueAt: number;
}

export interface Transfer {
  /** Takes a waiting job out of the source queue's lists; undefined when it started or is gone. */
  detach(source: string, jobId: string, intentId: string): Promise<Detached | undefined>;
  /** Adds the detached job to the target queue, unless an earlier call did. */
  attach(source: string, target: string, jobId: string, detached: Detached): Promise<void>;
  /** Deletes the source copy of a job that reached its target queue. */
  drop(source: string, jobId: string, intentId: string): Promise<boolean>;
  /** The trace context a job was enqueued in (tracing on), for the span of its move. */
  traceOf(workerId: string, jobId: string): Promise<StoredTrace | undefined>;
  /** Up to `limit` job ids a thief may take, oldest first: waiting, then prioritized. */
  oldestWaiting(workerId: string, limit: number): Promise<readonly string[]>;
  /** Up to `limit` job ids that have not started: waiting, prioritized and delayed. */
  notStarted(workerId: string, limit: number): Promise<readonly string[]>;
}

export interface TransferOptions {
  readonly redis: RedisClient;
  readonly queues: Pick<QueueRegistry, 'forWorker'>;
}

export function createTransfer({ redis, queues }: TransferOptions): Transfer {
  const script = scriptsIn(redis, LUA_DIRECTORY);
  const detachScript = script('detach');
  const dropScript = script('drop');

  return {
    async detach(source, jobId, intentId) {
      const queue = queues.forWorker(source);
      const { wait, paused, prioritized, delayed } = queue.keys;
      const jobKey = queue.toKey(jobId);
      const reply = (await detachScript([wait, paused, prioritized, delayed, jobKey, `${jobKey}:lock`].map(String), [
        jobId,
        intentId,
      ])) as [string, number] | null;
      if (!reply) return undefined;
      const from = reply[0] === 'prioritized' || reply[0] === 'delayed' ? reply[0] : 'wait';
      return { from, dueAt: Number(reply[1]) };
    },

    async attach(source, target, jobId, detached) {
      const job = await Job.fromId(queues.forWorker(source), jobId);
      if (!job) return; // the source copy is gone: an earlier call attached it and dropped it
      const to = queues.forWorker(target);
      const delay = detached.from === 'delayed' ? Math.max(0, detached.dueAt - Date.now()) : 0;
      const carry = job.attemptsMade > 0 || job.attemptsStarted > 0 || job.stalledCounter > 0;
      let present = await Job.fromId(to, jobId);
      if (!present) {
        const opts: JobsOptions = {
          ...job.opts,
          jobId,
          timestamp: job.timestamp,
          delay: carry ? PARK_DELAY_MS : delay,
        };
        await to.add(job.name, job.data as unknown, opts);
        present = await Job.fromId(to, jobId);
      }
      if (!carry || !present || present.delay !== PARK_DELAY_MS || (await to.getJobState(jobId)) !== 'delayed') return;
      await redis.hset(to.toKey(jobId), { atm: job.attemptsMade, ats: job.attemptsStarted, stc: job.stalledCounter });
      if (delay > 0) await present.changeDelay(delay);
      else await present.promote();
    },

    async drop(source, jobId, intentId) {
      const jobKey = queues.forWorker(source).toKey(jobId);
      return (await dropScript([jobKey, `${jobKey}:logs`], [intentId])) === 1;
    },

    async traceOf(workerId, jobId) {
      const opts = await redis.hget(queues.forWorker(workerId).toKey(jobId), 'opts');
      if (opts === null) return undefined;
      const parsed = JSON.parse(opts) as unknown;
      return isRecord(parsed) ? traceOption(parsed) : undefined;
    },

    async oldestWaiting(workerId, limit) {
      const queue = queues.forWorker(workerId);
      const waiting = (await redis.lrange(String(queue.keys.wait), -limit, -1)).reverse();
      if (waiting.length >= limit) return waiting;
      return [...waiting, ...(await redis.zrange(String(queue.keys.prioritized), 0, limit - waiting.length - 1))];
    },

    async notStarted(workerId, limit) {
      const queue = queues.forWorker(workerId);
      const [waiting, paused, prioritized, delayed] = await Promise.all([
        redis.lrange(String(queue.keys.wait), -limit, -1),
        redis.lrange(String(queue.keys.paused), -limit, -1),
        redis.zrange(String(queue.keys.prioritized), 0, limit - 1),
        redis.zrange(String(queue.keys.delayed), 0, limit - 1),
      ]);
      return [...waiting.reverse(), ...paused.reverse(), ...prioritized, ...delayed].slice(0, limit);
    },
  };
}
