/**
 * Gathers the reservations one process needs in the same event-loop turn into one Redis call. Under
 * load a process parses several requests per turn; one script call for all of them saves a round
 * trip each, and the script chooses for them one after another, exactly as separate calls would.
 */
import type { ReserveOutcome, ReserveRequest } from '../ledger/ledger.js';

export type ReserveMany = (requests: readonly ReserveRequest[]) => Promise<ReserveOutcome[]>;

interface Waiting {
  readonly request: ReserveRequest;
  readonly resolve: (outcome: ReserveOutcome) => void;
  readonly reject: (error: unknown) => void;
}

/** The largest batch sent at once, so that one script call stays short on the shared Redis. */
const MAX_BATCH = 64;

export function createReserveBatcher(reserveMany: ReserveMany): (request: ReserveRequest) => Promise<ReserveOutcome> {
  const waiting: Waiting[] = [];

  const flush = () => {
    const batch = waiting.splice(0, MAX_BATCH);
    if (waiting.length > 0) setImmediate(flush);
    reserveMany(batch.map((entry) => entry.request)).then(
      (outcomes) =>
        batch.forEach((entry, i) => {
          const outcome = outcomes[i];
          if (outcome) entry.resolve(outcome);
          else entry.reject(new Error('reserve answered too few outcomes'));
        }),
      (error: unknown) => batch.forEach((entry) => entry.reject(error)),
    );
  };

  return (request) =>
    new Promise((resolve, reject) => {
      if (waiting.length === 0) setImmediate(flush);
      waiting.push({ request, resolve, reject });
    });
}
