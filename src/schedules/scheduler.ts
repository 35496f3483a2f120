/**
 * Makes the jobs of recurring schedules: every process looks for due schedules a few times a second,
 * claims some (one tick of a schedule at a time, pool-wide: see lua/schedule-claim-5.lua), decides
 * what each tick makes (rules.ts), makes its job through the normal enqueue path and records the
 * outcome and the next tick.
 *
 * Exactly one job per tick. A tick's job is enqueued under an idempotency key of its own
 * (`schedule <name> <tick>`), whose record is written in the transaction that adds the job. A process
 * that dies after the add but before recording the tick leaves the key answered: whoever claims the
 * tick next (after the lease) gets that job back instead of making a second. One that dies before
 * the add leaves a claim and no job; it is taken over once stale. On a Redis Cluster a plan left
 * half-done is finished (see idempotency/store.ts). The tick is recorded once (schedule-advance).
 */
import type { Dispatched } from '../contracts/dispatch.js';
import type { Dispatcher } from '../enqueue/dispatcher.js';
import { bodyHash, type IdempotencyStore } from '../idempotency/store.js';
import { settleClaim } from '../idempotency/settle.js';
import type { JobReader } from '../jobs/reader.js';
import type { Logger } from '../logging/logger.js';
import { tickRequest } from './definition.js';
import { planTick } from './rules.js';
import type { ClaimedTick, ScheduleStore, TickOutcome } from './store.js';

/**
 * How often each process's loop wakes: a wake costs nothing unless a look is due (see `pass`), so it
 * sets how soon after its time a tick is claimed, not what the looks cost.
 */
export const SCHEDULER_POLL_MS = 50;
/**
 * The longest a process goes without a look at Redis: a schedule written through another process is
 * seen within this (its first tick is at least SCHEDULE_MIN_INTERVAL_MS away), and the looks are the
 * scheduler's sign of life for the missed-tick rule, whose threshold is well above it.
 */
export const IDLE_LOOK_MS = 1_000;
/** How long a claimed tick is this process's: after it, another process takes the tick over. */
export const TICK_LEASE_MS = 5_000;
/**
 * No look for longer than this means no process was running: ticks that fell meanwhile are missed,
 * and the schedule's missed-tick policy applies. Well above a pause of a busy process.
 */
export const SCHEDULER_DOWN_AFTER_MS = 5_000;
/** Most schedules one look claims; the rest wait for the next look. */
const CLAIMS_PER_LOOK = 50;

/** Job states in which a schedule's previous job still waits or runs (`overlap: skip`). */
const UNFINISHED = new Set(['waiting', 'prioritized', 'delayed', 'active']);

export type TickKind = 'made' | 'skipped' | 'missed';

export interface SchedulerOptions {
  readonly store: Pick<ScheduleStore, 'claim' | 'advance'>;
  readonly idempotency: IdempotencyStore;
  readonly dispatcher: Pick<Dispatcher, 'dispatch'>;
  readonly reader: Pick<JobReader, 'read'>;
  readonly logger: Logger;
  /** Counts ticks by what they came to; `missed` by the number of ticks. */
  readonly onTicks: (kind: TickKind, count: number) => void;
  /** Told of each job made, as the enqueue routes tell of theirs. */
  readonly onEnqueued: (dispatched: Dispatched, jobName: string) => void;
  /** Fault tests only: awaited once a tick's job is made, before the tick is recorded (step `made`). */
  readonly afterStep?: ((step: string) => Promise<void>) | undefined;
}

export interface Scheduler {
  /**
   * One wake of the loop: when a schedule may be due (or IDLE_LOOK_MS has passed), one look claims
   * the due ticks and makes their jobs; otherwise nothing.
   */
  pass(): Promise<void>;
}

/** The idempotency key of a tick's job; a space is never part of a client's key. */
export function tickKey(name: string, tick: number): string {
  return `schedule ${name} ${tick}`;
}

export function createScheduler(options: SchedulerOptions): Scheduler {
  const { store, idempotency, dispatcher, logger } = options;

  /**
   * The job of a tick: made now, or the one made before (a replay); skipped when its previous job
   * still goes (`overlap: skip`); undefined while another process makes it.
   */
  const jobFor = async (claimed: ClaimedTick, jobTick: number): Promise<{ jobId: string } | 'skipped' | undefined> => {
    const key = tickKey(claimed.name, jobTick);
    const hash = bodyHash({ schedule: claimed.name, tick: jobTick });
    const claim = await idempotency.claim(key, hash);
    if (claim.kind === 'busy' || claim.kind === 'mismatch') return undefined;
    const request = {
      ...tickRequest(claimed.definition.task, Date.now()),
      schedule: { name: claimed.name, tickAt: jobTick },
    };
    const settled = await settleClaim<Dispatched>({ idempotency, logger }, key, hash, claim, {
      decline: async () => claimed.definition.overlap === 'skip' && (await stillGoing(claimed.lastJobId)),
      make: async (record) => {
        const dispatched = await dispatcher.dispatch(request, record);
        options.onEnqueued(dispatched, request.jobName);
        return dispatched;
      },
      resume: async (record, planned) => {
        await dispatcher.dispatch(request, record, planned);
        return planned;
      },
    });
    return settled.kind === 'declined' ? 'skipped' : { jobId: settled.answer.jobId };
  };

  const stillGoing = async (jobId: string | null): Promise<boolean> => {
    if (jobId === null) return false;
    const view = await options.reader.read(jobId);
    return view !== undefined && UNFINISHED.has(view.state);
  };

  const fire = async (claimed: ClaimedTick, now: number, down: { from: number; to: number } | undefined) => {
    const plan = planTick(claimed.definition, { tick: claimed.tick, runs: claimed.runs, down }, now);
    let outcome: TickOutcome = { outcome: 'none', jobTick: null, jobId: null, missed: plan.missed, next: plan.next };
    if (plan.jobTick !== null) {
      const job = await jobFor(claimed, plan.jobTick);
      // Another process is making it: the tick stays claimed until its lease ends, then is looked at again.
      if (job === undefined) return;
      outcome =
        job === 'skipped'
          ? { ...outcome, outcome: 'skipped' }
          : { ...outcome, outcome: 'made', jobTick: plan.jobTick, jobId: job.jobId };
    }
    if (outcome.outcome === 'made') await options.afterStep?.('made');
    if (!(await store.advance(claimed, outcome))) return;
    if (outcome.outcome !== 'none') options.onTicks(outcome.outcome, 1);
    if (outcome.missed > 0) options.onTicks('missed', outcome.missed);
    logger.info(
      {
        event: 'schedule.tick',
        schedule: claimed.name,
        tickAt: claimed.tick,
        outcome: outcome.outcome,
        jobId: outcome.jobId,
        missed: outcome.missed,
        nextTickAt: outcome.next,
      },
      'schedule ticked',
    );
  };

  /** When this process looks again, by its own clock. */
  let lookAt = 0;
  return {
    async pass() {
      if (Date.now() < lookAt) return;
      const { now, down, claimed, nextDueAt } = await store.claim({
        max: CLAIMS_PER_LOOK,
        leaseMs: TICK_LEASE_MS,
        downAfterMs: SCHEDULER_DOWN_AFTER_MS,
      });
      // The next look: at once after ticks were claimed (the next tick of a schedule that is behind
      // is due already), else when the earliest schedule falls due (Redis's time, taken to this
      // process's clock), or after IDLE_LOOK_MS at the latest.
      const local = Date.now();
      const dueAt = nextDueAt === undefined ? Number.POSITIVE_INFINITY : nextDueAt - (now - local);
      lookAt = claimed.length > 0 ? 0 : Math.min(local + IDLE_LOOK_MS, dueAt);
      await Promise.all(
        claimed.map((tick) =>
          fire(tick, now, down).catch((error: unknown) =>
            logger.warn(
              { event: 'schedule.tick-failed', err: error, schedule: tick.name, tickAt: tick.tick },
              'could not make the job of a tick; it is tried again after its lease',
            ),
          ),
        ),
      );
    },
  };
}
