/**
 * `GET /metrics`: the cluster-wide Prometheus exposition, and the middleware that times every request.
 */
import { Router, type RequestHandler } from 'express';
import { fromStore } from '../../errors.js';
import type { ProcessMetrics } from '../../metrics/process-metrics.js';

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

/** Labels requests by their route pattern, never by raw path, so ids never become label values. */
export function requestTimer(metrics: Pick<ProcessMetrics, 'httpRequest'>): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      const route = (req.route as { path?: unknown } | undefined)?.path;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.httpRequest(typeof route === 'string' ? route : 'unmatched', req.method, res.statusCode, seconds);
    });
    next();
  };
}
