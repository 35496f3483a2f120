/**
 * What the two sides of the host-wide `/metrics` share: the IPC message they exchange and the
 * counter of failed exchanges, defined alike on both sides. The primary's side is
 * host-metrics-primary.ts, a process's host-metrics-client.ts.
 */
import { Counter, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';
import { METRIC_PREFIX } from './process-metrics.js';

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

export const MESSAGE = 'bullpen:metrics';

export interface MetricsMessage {
  readonly channel: typeof MESSAGE;
  readonly kind: 'request' | 'collect' | 'report' | 'response';
  readonly id: number;
  readonly metrics?: MetricsJson;
  readonly text?: string;
  readonly error?: string;
}

export function isMetricsMessage(message: unknown): message is MetricsMessage {
  return typeof message === 'object' && message !== null && (message as { channel?: unknown }).channel === MESSAGE;
}

/** The exchanges that can fail, by the side that counts them. */
export const WORKER_IPC_OPERATIONS = ['report', 'scrape'] as const;
export const PRIMARY_IPC_OPERATIONS = ['collect', 'respond'] as const;
export type MetricsIpcOperation = (typeof WORKER_IPC_OPERATIONS)[number] | (typeof PRIMARY_IPC_OPERATIONS)[number];

/** One counter, defined alike on both sides so that the primary's sum keeps one help text. */
export function ipcFailureCounter(registry: Registry, labelNames: readonly string[]): Counter {
  return new Counter({
    name: `${METRIC_PREFIX}metrics_ipc_failures_total`,
    help:
      'Metrics exchanges over IPC that failed, by operation: report (the worker could not send its metrics to the primary), ' +
      'scrape (the worker got no cluster metrics from the primary; the scrape answered 503), collect (the primary got no ' +
      "answer from the worker in time and used its last report), respond (the primary could not answer the worker's scrape).",
    labelNames: [...labelNames],
    registers: [registry],
  });
}
