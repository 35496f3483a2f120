/**
 * A process listens before it can serve: while it waits for Redis (for as long as Redis takes), takes
 * its worker id's lease and starts its consumer, its port answers at once and says why it cannot serve
 * yet, instead of refusing connections. Every route that needs Redis answers 503 `NOT_READY` with
 * `Retry-After`; the routes that need none (liveness, health, the API's description) answer as ever.
 */
import type { RequestHandler } from 'express';
import { NotReadyError, type StartupWait } from '../errors.js';
import { routingForm } from './route-table.js';

/** When a client of a process that is starting should ask again: about the interval of its waiting lines. */
export const NOT_READY_RETRY_AFTER_SECONDS = 5;

/** What a process waits for before it serves; undefined once it serves. */
export type WaitingFor = () => StartupWait | undefined;

/** The paths that answer without Redis, compared the way routing compares them. */
function needsNoRedis(path: string): boolean {
  const form = routingForm(path);
  return form === '/livez' || form === '/healthz' || form === '/openapi.json' || /^\/docs(?:\/|$)/.test(form);
}

export function refuseUntilReady(waitingFor: WaitingFor): RequestHandler {
  return (req, _res, next) => {
    const waiting = waitingFor();
    if (waiting === undefined || needsNoRedis(req.path)) {
      next();
      return;
    }
    next(new NotReadyError(waiting, NOT_READY_RETRY_AFTER_SECONDS));
  };
}
