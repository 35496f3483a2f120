/**
 * Runs an enqueue at most once per idempotency key: a repeat of the same body gets the first answer
 * again (200, `Idempotent-Replayed: true`) and enqueues nothing. The answer is recorded in the
 * transaction that creates the jobs, so a retry after a crash finds either the answer (and the jobs)
 * or a claim that no job was created for. On a Redis Cluster it may also find the plan of a request
 * that died while adding its jobs: it then finishes that request's work and gives its answer. Used
 * by the enqueue routes (the client's `Idempotency-Key`) and by `POST /jobs/:id/retry` (a key of its
 * own per retried job).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Response } from 'express';
import { IdempotencyKeyInUseError, IdempotencyKeyReusedError, QueueUnavailableError } from '../errors.js';
import { bodyHash, type IdempotencyStore } from '../idempotency/store.js';
import { settleClaim, type Settleable } from '../idempotency/settle.js';
import type { Logger } from '../logging/logger.js';
import type { AtomicRecord } from '../contracts/dispatch.js';
import type { ReplicaAcks } from '../redis/replica-acks.js';

/** How long a repeat waits for the first request with its key to answer, before answering 409. */
const IN_USE_WAIT_MS = 2_000;
const IN_USE_POLL_MS = 25;

/**
 * Runs `enqueue` once per key. Without a key, `enqueue` just runs. A replay is answered here, and
 * then undefined is returned: the caller answers only what it gets back. `resume`, when given, is
 * the answer a dead request planned: `enqueue` must add the jobs it names (those already added are
 * skipped), under their ids, and answer it.
 */
export type Once = <A>(
  key: string | undefined,
  res: Response,
  body: unknown,
  enqueue: (record?: (answer: A) => AtomicRecord, resume?: A) => Promise<A>,
) => Promise<A | undefined>;

/** The first answer again, marked as such. */
function replay(res: Response, answer: unknown): void {
  res.status(200).set('Idempotent-Replayed', 'true');
  const location = (answer as { jobId?: unknown }).jobId;
  if (typeof location === 'string') res.location(`/jobs/${encodeURIComponent(location)}`);
  res.json(answer);
}

export interface OnceOptions {
  readonly idempotency: IdempotencyStore;
  /**
   * Durable acceptance: a replay is answered only once enough replicas hold its jobs, so that a client
   * told 503 NOT_DURABLE gets its job again by retrying, and only once it is durable.
   */
  readonly replicaAcks?: ReplicaAcks | undefined;
  readonly logger: Logger;
}

/** The ids of the jobs an answer names: one task's, or each of a batch's. */
function jobIdsOf(answer: unknown): string[] {
  const { jobId, tasks } = answer as { jobId?: unknown; tasks?: unknown };
  if (typeof jobId === 'string') return [jobId];
  if (!Array.isArray(tasks)) return [];
  return tasks.flatMap((task) => {
    const id = (task as { jobId?: unknown } | null)?.jobId;
    return typeof id === 'string' ? [id] : [];
  });
}

export function createOnce({ idempotency, replicaAcks, logger }: OnceOptions): Once {
  /** Claims the key, waiting a little while another request holding it finishes. */
  const claim = async (key: string, hash: string): Promise<Settleable | { kind: 'mismatch' }> => {
    const deadline = Date.now() + IN_USE_WAIT_MS;
    for (;;) {
      const outcome = await idempotency.claim(key, hash).catch((error: unknown) => {
        throw new QueueUnavailableError(error);
      });
      if (outcome.kind !== 'busy') return outcome;
      if (Date.now() >= deadline) throw new IdempotencyKeyInUseError(Math.ceil(IN_USE_WAIT_MS / 1000));
      await sleep(IN_USE_POLL_MS);
    }
  };

  const once: Once = async <A>(
    key: string | undefined,
    res: Response,
    body: unknown,
    enqueue: (record?: (answer: A) => AtomicRecord, resume?: A) => Promise<A>,
  ): Promise<A | undefined> => {
    if (key === undefined) return enqueue();
    const hash = bodyHash(body);
    const claimed = await claim(key, hash);
    if (claimed.kind === 'mismatch') throw new IdempotencyKeyReusedError();
    const settled = await settleClaim<A>({ idempotency, logger }, key, hash, claimed, {
      make: (record) => enqueue(record),
      resume: (record, planned) => enqueue(record, planned),
    });
    switch (settled.kind) {
      case 'made':
        return settled.answer;
      case 'replayed':
        await replicaAcks?.confirm(jobIdsOf(settled.answer));
        replay(res, settled.answer);
        return undefined;
      case 'resumed':
        replay(res, settled.answer);
        logger.warn(
          { event: 'idempotency.resumed', idempotencyKey: key },
          'finished the enqueue of a request that died while adding its jobs',
        );
        return undefined;
    }
  };
  return once;
}
