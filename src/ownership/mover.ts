/**
 * Moves one waiting job from a worker's queue to another's, as a protocol that survives a crash at
 * every step. Each step touches one place (the ledger, or one queue) and can be repeated:
 *
 *   1. begin   (ledger)  the intent is written: token, source, target, a fresh intent id
 *   2. detach  (source)  the job leaves the source lists, unless its consumer started it first;
 *                        the hash stays, marked with the intent, as the copy to finish from
 *   3. shift   (ledger)  the reservation and both workers' counters move to the target, and the
 *                        job's location is recorded for reads of its id
 *   4. attach  (target)  the job is added to the target queue with the same id and attempts
 *   5. drop    (source)  the source copy is deleted
 *   6. commit  (ledger)  the intent is removed
 *
 * A job that cannot be detached (it started, or finished) ends the move with an abort at step 2,
 * which leaves the ledger as it was. Whoever finds an intent whose executor no longer holds its lease
 * adopts it and drives it from step 2 on with the same intent id, so that a move is never lost and a
 * job is never in two queues at once.
 */
import { randomUUID } from 'node:crypto';
import type { MoveIntent, MoveLedger, MoveReason } from '../ledger/moves.js';
import type { Transfer } from '../queue/transfer.js';
import { noTracing, type Tracing } from '../tracing/tracing.js';
import type { MoveStep } from './move-steps.js';

export type { MoveStep } from './move-steps.js';

export type MoveOutcome = 'moved' | 'not-movable' | 'busy' | 'no-target';

export interface MoveRequest {
  /** The job's public id, which names the worker it was first routed to. */
  readonly jobId: string;
  readonly token: string;
  readonly source: string;
  /** Undefined: the least-loaded live worker other than the source. */
  readonly target: string | undefined;
  readonly reason: MoveReason;
}

export interface Mover {
  move(request: MoveRequest): Promise<MoveOutcome>;
  /** Drives to their end the moves whose executors are gone; answers how many it finished. */
  recover(): Promise<number>;
}

export interface MoverOptions {
  readonly ledger: MoveLedger;
  readonly transfer: Transfer;
  /** Called once for each move this process commits. */
  readonly onMoved: (reason: MoveReason) => void;
  /** Test hook: awaited after each step (the fault tests kill the process there). */
  readonly afterStep?: (step: MoveStep) => Promise<void> | void;
  /** A span per move, in the moved job's trace (issue 24); nothing when tracing is off. */
  readonly tracing?: Tracing | undefined;
}

export function createMover({
  ledger,
  transfer,
  onMoved,
  afterStep = () => {},
  tracing = noTracing(),
}: MoverOptions): Mover {
  /** Steps 2 to 6 of one intent, from wherever it stands. */
  const drive = async (
    intent: Pick<MoveIntent, 'token' | 'id' | 'jobId' | 'source' | 'target' | 'reason'>,
  ): Promise<MoveOutcome> => {
    const { token, id, jobId, source, target } = intent;
    const detached = await transfer.detach(source, jobId, id);
    if (!detached) {
      const aborted = await ledger.end(token, id, 'abort');
      if (aborted !== -1) return 'not-movable';
      // The reservation shifted, so an earlier executor detached the job, attached it and dropped
      // the source copy: only the commit is left.
    } else {
      await afterStep('detached');
      if (!(await ledger.shift(token, id))) return 'moved'; // another executor committed it meanwhile
      await afterStep('shifted');
      await transfer.attach(source, target, jobId, detached);
      await afterStep('attached');
      await transfer.drop(source, jobId, id);
      await afterStep('dropped');
    }
    if ((await ledger.end(token, id, 'commit')) === 1) onMoved(intent.reason);
    await afterStep('committed');
    return 'moved';
  };

  /** A move, and the worker it went to: the ledger chooses one when the request names none. */
  const move = async (
    { jobId, token, source, target, reason }: MoveRequest,
    chosen: (target: string) => void = () => {},
  ): Promise<MoveOutcome> => {
    const id = randomUUID();
    const begun = await ledger.begin({ jobId, token, intentId: id, source, target, reason });
    if (!begun.begun) return begun.why === 'running' ? 'not-movable' : begun.why;
    chosen(begun.target);
    await afterStep('begun');
    return drive({ token, id, jobId, source, target: begun.target, reason });
  };

  return {
    async move(request) {
      if (!tracing.enabled) return move(request);
      const { jobId, source, reason } = request;
      return tracing.inSpan(
        'move',
        {
          parent: await transfer.traceOf(source, jobId).catch(() => undefined),
          attributes: { 'messaging.message.id': jobId, 'bullpen.move.reason': reason, 'bullpen.moved_from': source },
        },
        async (span) => {
          const outcome = await move(request, (target) => span.setAttributes({ 'bullpen.worker': target }));
          span.setAttributes({ 'bullpen.move.outcome': outcome });
          return outcome;
        },
      );
    },

    async recover() {
      let finished = 0;
      for (const pending of await ledger.pending()) {
        const intent = await ledger.adopt(pending);
        if (intent && (await drive(intent)) === 'moved') finished += 1;
      }
      return finished;
    },
  };
}
