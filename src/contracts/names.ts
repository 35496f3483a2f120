/**
 * Names that tie a job to its worker. Each worker id owns one BullMQ queue, and a job's id carries
 * the worker it was routed to, so `GET /jobs/:id` finds the job with one lookup and without a
 * separate index that would need its own retention.
 */
import { randomBytes } from 'node:crypto';
import { LEDGER_TAG } from './keys.js';

/**
 * The delayed queue: where a delayed job waits until it is due and routed to a worker. It is no worker,
 * but its id takes a worker id's place in its queue's name and in its jobs' ids; worker ids end in
 * `-<index>`, so it can never be one of them.
 */
export const DELAYED_QUEUE = 'scheduled';

/**
 * The held queue: where a job waits for its group's turn once every worker is busy (see
 * ledger/lua/includes/groups.lua), until it is handed to the first worker with room. No consumer
 * reads it; like the delayed queue it takes a worker id's place in its queue's name.
 */
export const HELD_QUEUE = 'held';

export function workerIdFor(hostId: string, index: number): string {
  return `${hostId}-${index}`;
}

/**
 * `tasks.{<workerId>}`: the braces are a Redis Cluster hash tag, so that each worker's queue (every
 * BullMQ key of it) sits in a slot of its own and the queues spread over the cluster's masters.
 */
export function queueNameFor(workerId: string): string {
  // The held queue shares the ledger's slot, so that a job and its place in its group's line are
  // written in one transaction, on a Redis Cluster too.
  if (workerId === HELD_QUEUE) return `tasks.${LEDGER_TAG}held`;
  return `tasks.{${workerId}}`;
}

/**
 * A job's token: 128 random bits in 22 characters. A UUID would take 36, and a waiting job holds its
 * token four times in Redis (its key, its options, its queue entry and its ledger entry).
 */
export function newToken(): string {
  return randomBytes(16).toString('base64url');
}

/** Job ids are `<workerId>~<token>`; neither part may hold `~` or `:` (BullMQ forbids `:`). */
export function jobIdFor(workerId: string, token: string): string {
  return `${workerId}~${token}`;
}

export interface ParsedJobId {
  readonly workerId: string;
  readonly token: string;
}

const JOB_ID = /^(?<workerId>[A-Za-z0-9_.-]{1,80})~(?<token>[A-Za-z0-9_-]{1,64})$/;

export function parseJobId(jobId: string): ParsedJobId | undefined {
  const match = JOB_ID.exec(jobId);
  if (!match?.groups) return undefined;
  const { workerId, token } = match.groups as { workerId: string; token: string };
  return { workerId, token };
}
