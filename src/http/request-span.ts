/**
 * The span of each API request (issue 24): a SERVER span that continues the caller's trace when the
 * request carries a W3C `traceparent` (a new trace otherwise), answers with its own `traceparent`
 * header so that the caller can find the trace, and is active while the request is handled, so that
 * the enqueue's span and the job's spans hang under it and its log lines carry its ids. Mounted only
 * with tracing on; the status routes, metrics and documentation are left out.
 */
import type { RequestHandler } from 'express';
import { carrierFromHeaders, type Tracing } from '../tracing/tracing.js';
import { routeOf } from './route-table.js';

/** The routes whose requests are traced: tasks, jobs, groups and schedules. */
const TRACED = /^\/(enqueue-tasks?|jobs|groups|schedules)\b/;

export function requestSpans(tracing: Tracing): RequestHandler {
  return (req, res, next) => {
    const route = routeOf(req.path);
    if (route === undefined || !TRACED.test(route.label)) {
      next();
      return;
    }
    void tracing.inSpan(
      `${req.method} ${route.label}`,
      {
        kind: 'server',
        parent: carrierFromHeaders((name) => req.get(name)),
        attributes: { 'http.request.method': req.method, 'http.route': route.label, 'url.path': req.path },
      },
      (span) =>
        new Promise<void>((resolve) => {
          const carrier = span.carrier();
          if (carrier !== undefined) res.setHeader('traceparent', carrier.traceparent);
          res.once('finish', () => {
            span.setAttributes({ 'http.response.status_code': res.statusCode });
            if (res.statusCode >= 500) span.fail(new Error(`answered ${res.statusCode}`));
            resolve();
          });
          // A client that hangs up ends the span too.
          res.once('close', () => resolve());
          next();
        }),
    );
  };
}
