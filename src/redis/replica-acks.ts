/**
 * Durable acceptance (ENQUEUE_MIN_REPLICAS): an enqueue is answered 202 only once its jobs' write has
 * reached that many replicas, so that an accepted job survives the loss of the master.
 *
 * Redis's WAIT covers the earlier writes of the connection it is sent on, and blocks that connection
 * until enough replicas acknowledge or its time-out passes. On the request connection it would hold
 * every other request of the process behind it (and outlast COMMAND_TIMEOUT_MS), so it goes on a
 * connection of its own, behind a write of that connection sent after the add had answered: a
 * PUBLISH to a channel nobody listens to, which writes no key but is replicated, so the WAIT behind it
 * covers everything the master had run before, the add included. One WAIT is in flight at a time;
 * the confirmations asked for meanwhile share the next one, so a replica that is away costs a
 * request at most two time-outs, however many are waiting.
 */
import type { Redis } from './ioredis.js';
import { NotDurableError, QueueUnavailableError } from '../errors.js';

export interface ReplicaAcks {
  /**
   * Resolves once `minReplicas` replicas hold every write the master had run before the call (the
   * jobs named were added before it). Throws NotDurableError when fewer acknowledged in time, and
   * QueueUnavailableError when Redis did not answer.
   */
  confirm(jobIds: readonly string[]): Promise<void>;
}

export interface ReplicaAcksOptions {
  /** A connection used for nothing else: WAIT blocks it. */
  readonly connection: Pick<Redis, 'publish' | 'wait'>;
  /** The channel the marking PUBLISH goes to. */
  readonly channel: string;
  readonly minReplicas: number;
  readonly timeoutMs: number;
}

export function createReplicaAcks({ connection, channel, minReplicas, timeoutMs }: ReplicaAcksOptions): ReplicaAcks {
  let inFlight: Promise<unknown> | undefined;
  let next: Promise<number> | undefined;

  const round = async (): Promise<number> => {
    // Sent back to back on one connection: Redis runs the WAIT right after the PUBLISH.
    const [, count] = await Promise.all([connection.publish(channel, ''), connection.wait(minReplicas, timeoutMs)]);
    return count;
  };

  const acknowledged = (): Promise<number> => {
    if (next !== undefined) return next;
    const previous = inFlight ?? Promise.resolve();
    const mine: Promise<number> = previous
      .catch(() => undefined)
      .then(() => {
        // From here on, a caller needs a round that starts after this one's PUBLISH.
        next = undefined;
        inFlight = mine;
        return round();
      });
    next = mine;
    return mine;
  };
  const retryAfterSeconds = Math.max(1, Math.ceil(timeoutMs / 1000));

  return {
    async confirm(jobIds) {
      const count = await acknowledged().catch((error: unknown) => {
        throw new QueueUnavailableError(error);
      });
      if (count < minReplicas) throw new NotDurableError(jobIds, count, minReplicas, retryAfterSeconds);
    },
  };
}
