/**
 * What follows a claim of an idempotency key, the same for every user of keys (the enqueue routes, a
 * job's retry, a schedule's tick): the answer given before is given again; the plan of a claimer
 * that died midway (a Redis Cluster) is finished under that claimer's token; otherwise the work is
 * done under the claim, whose record turns into the answer in the transaction that does it, and a
 * claim whose work failed or was declined is given up, so a retry need not wait for it to go stale.
 */
import type { AtomicRecord } from '../contracts/dispatch.js';
import type { Logger } from '../logging/logger.js';
import type { ClaimOutcome, IdempotencyStore } from './store.js';

/** A claim that lets the caller go on: the key was free (or stale), or it holds an answer or a plan. */
export type Settleable = Extract<ClaimOutcome, { kind: 'claimed' | 'resume' | 'replay' }>;

/** What a claim came to: work done now or finished for a dead claimer, or an answer given before. */
export interface Made<A> {
  readonly kind: 'made' | 'resumed' | 'replayed';
  readonly answer: A;
}

/** `decline` said no: nothing was done, and the key was given up. */
export type Settled<A> = Made<A> | { readonly kind: 'declined' };

export interface Work<A> {
  /**
   * Asked under a fresh claim, before `make`: true gives the key up and does nothing. The claim is
   * held meanwhile, so no other claimer does the work while this one decides.
   */
  readonly decline?: () => Promise<boolean>;
  /** Does the work under a fresh claim; `record` turns the claim into `answer` in the transaction that does it. */
  readonly make: (record: (answer: A) => AtomicRecord) => Promise<A>;
  /** Finishes a dead claimer's plan, `planned`: what it did not get to is done, under the planned ids. */
  readonly resume: (record: (answer: A) => AtomicRecord, planned: A) => Promise<A>;
}

export interface SettleOptions {
  readonly idempotency: Pick<IdempotencyStore, 'answerRecord' | 'release'>;
  readonly logger: Logger;
}

export function settleClaim<A>(
  options: SettleOptions,
  key: string,
  hash: string,
  claim: Settleable,
  work: Omit<Work<A>, 'decline'>,
): Promise<Made<A>>;
export function settleClaim<A>(
  options: SettleOptions,
  key: string,
  hash: string,
  claim: Settleable,
  work: Work<A>,
): Promise<Settled<A>>;
export async function settleClaim<A>(
  { idempotency, logger }: SettleOptions,
  key: string,
  hash: string,
  claim: Settleable,
  work: Work<A>,
): Promise<Settled<A>> {
  if (claim.kind === 'replay') return { kind: 'replayed', answer: claim.answer as A };
  if (claim.kind === 'resume') {
    // The dead claimer's token names the markers its adds left; its plan is written already.
    const dead = { token: claim.token, at: 0 };
    const answer = await work.resume((value) => idempotency.answerRecord(key, hash, dead, value), claim.answer as A);
    return { kind: 'resumed', answer };
  }
  try {
    if (await work.decline?.()) {
      await idempotency.release(key, claim.token);
      return { kind: 'declined' };
    }
    const answer = await work.make((value) => idempotency.answerRecord(key, hash, claim, value));
    return { kind: 'made', answer };
  } catch (error) {
    await idempotency
      .release(key, claim.token)
      .catch((releaseError: unknown) =>
        logger.warn(
          { event: 'idempotency.release-failed', err: releaseError },
          'could not release an idempotency key; a retry waits until it is stale',
        ),
      );
    throw error;
  }
}
