/**
 * `GET /metrics`: the cluster-wide Prometheus exposition, and the middleware that times every request.
 */
import { Router, type Request, type RequestHandler } from 'express';
import { fromStore } from '../../errors.js';
import type { ProcessMetrics } from '../../metrics/process-metrics.js';
import { ADMIN_ROUTE, ROUTES, type RouteEntry } from '../route-table.js';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export function metricsRouter({ scrape }: { scrape: () => Promise<string> }): Router {
  const router = Router();
  router.get('/metrics', async (_req, res) => {
    // The type once the scrape has worked: a refusal is the JSON error of every route, typed as such.
    const text = await fromStore(scrape);
    res.type(PROMETHEUS_CONTENT_TYPE).send(text);
  });
  return router;
}

/**
 * Labels requests by their route pattern, never by raw path, so ids never become label values. An
 * answer given before or instead of a route handler (405, a body refused with 413) on a known path
 * takes that path's label from the route table; every request of the queue dashboard (`admin`, when
 * it is on) takes one label; only paths the service does not know are `unmatched`.
 */
export function requestTimer(
  metrics: Pick<ProcessMetrics, 'httpRequest'>,
  { admin }: { admin: boolean },
): RequestHandler {
  const known = admin ? [ADMIN_ROUTE, ...ROUTES] : ROUTES;
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    // Read now: a mounted app rewrites the path while it handles the request.
    const path = req.path;
    res.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.httpRequest(routeLabel(req, path, known), req.method, res.statusCode, seconds);
    });
    next();
  };
}

function routeLabel(req: Request, path: string, known: readonly RouteEntry[]): string {
  const entry = known.find((candidate) => candidate.pattern.test(path));
  if (entry === ADMIN_ROUTE) return entry.label;
  const route = (req.route as { path?: unknown } | undefined)?.path;
  if (typeof route === 'string') return route;
  return entry?.label ?? 'unmatched';
}
