/**
 * Where the dispatcher puts a task: on the worker its reservation chose, in the held queue to wait for
 * its group's turn, or in the delayed queue until it is due; and what the client is answered for it.
 */
import type { Dispatched, DispatchRequest } from '../contracts/dispatch.js';
import { DEFAULT_GROUP } from '../contracts/stored-job.js';
import { jobIdFor, parseJobId, queueNameFor, DELAYED_QUEUE, HELD_QUEUE } from '../contracts/names.js';
import type { ReserveOutcome } from '../ledger/ledger.js';
import { messagingAttributes, type Attributes } from '../tracing/tracing.js';

/** Where a job goes: a worker's queue with a reserved slot, or the delayed jobs' queue without one. */
export interface Placement {
  readonly token: string;
  readonly jobId: string;
  /** The worker whose queue the job is added to: a real one, or DELAYED_QUEUE. */
  readonly queueOf: string;
  /** Whether a slot was reserved for it, which also wrote its index entry. */
  readonly reserved: boolean;
  /** Its enqueue time (ms): its reservation's, so that it matches its index entry. */
  readonly timestamp: number;
  /** A held job's group: it waits in the held queue for the group's turn. */
  readonly held?: { readonly group: string } | undefined;
  /** The worker the 202 names: the one its id is made for (null for a delayed job). */
  readonly answered?: string | undefined;
  /** The chosen worker's load when it was chosen (queued and running), for the enqueue's span. */
  readonly load?: number | undefined;
}

/** A reserved job goes to its worker's queue; a held one to the held queue, its id made for a worker. */
export function placed(
  token: string,
  { group }: DispatchRequest,
  outcome: Extract<ReserveOutcome, { kind: 'reserved' | 'held' }>,
): Placement {
  const jobId = jobIdFor(outcome.workerId, token);
  if (outcome.kind === 'reserved')
    return {
      token,
      jobId,
      queueOf: outcome.workerId,
      reserved: true,
      timestamp: outcome.reservedAt,
      load: outcome.load,
    };
  return {
    token,
    jobId,
    queueOf: HELD_QUEUE,
    reserved: false,
    timestamp: Date.now(),
    held: { group: group ?? DEFAULT_GROUP },
    answered: outcome.workerId,
    load: outcome.load,
  };
}

export function waitForDue(token: string): Placement {
  return {
    token,
    jobId: jobIdFor(DELAYED_QUEUE, token),
    queueOf: DELAYED_QUEUE,
    reserved: false,
    timestamp: Date.now(),
  };
}

/** A planned job, placed again as planned; its index entry is written with it (it may lack one). */
export function replanned({ jobId, workerId }: Dispatched): Placement {
  const token = parseJobId(jobId)?.token ?? jobId;
  return { token, jobId, queueOf: workerId ?? DELAYED_QUEUE, reserved: false, timestamp: Date.now() };
}

export function dispatchedOf({ jobId, queueOf, reserved, answered }: Placement): Dispatched {
  return { jobId, workerId: answered ?? (reserved ? queueOf : null) };
}

export function isDelayed({ options }: DispatchRequest): boolean {
  return (options?.delayMs ?? 0) > 0;
}

/** What the send span learns once a job is placed: where it went, and why. */
export function placementAttributes({ jobId, queueOf, reserved, held, answered, load }: Placement): Attributes {
  return {
    ...messagingAttributes('send', queueNameFor(queueOf), jobId),
    'bullpen.worker': answered ?? (reserved ? queueOf : undefined),
    'bullpen.worker.load': load,
    'bullpen.placement': reserved ? 'reserved' : held ? 'held' : 'delayed',
    'bullpen.group': held?.group,
  };
}
