/**
 * One cluster-wide `/metrics`, whichever process a scrape lands on. The worker that receives the
 * scrape asks the primary over IPC; the primary asks every live worker for its registry as JSON,
 * waits a bounded time, and sums them with prom-client's `AggregatorRegistry.aggregate`.
 *
 * prom-client's own `clusterMetrics()` is not used: it fails the whole scrape when one worker does
 * not answer within 5 s, and a worker killed a moment ago still counts. Here a worker that does not
 * answer in time is represented by its last report.
 *
 * Counters must never go backwards, but a re-forked worker starts its counters at 0. So when a worker
 * process exits, the counters and histograms of its last report are carried over and added to its
 * successor's, which carries the same `worker` label.
 */
import type { Worker as ClusterWorker } from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

const MESSAGE = 'bullpen:metrics';

interface MetricsMessage {
  readonly channel: typeof MESSAGE;
  readonly kind: 'request' | 'collect' | 'report' | 'response';
  readonly id: number;
  readonly metrics?: MetricsJson;
  readonly text?: string;
  readonly error?: string;
}

function isMetricsMessage(message: unknown): message is MetricsMessage {
  return typeof message === 'object' && message !== null && (message as { channel?: unknown }).channel === MESSAGE;
}

/** Only what accumulates may be carried over from a dead process; its gauges died with it. */
const CUMULATIVE = new Set(['counter', 'histogram', 'summary']);

async function aggregate(parts: readonly MetricsJson[]): Promise<MetricsJson> {
  return AggregatorRegistry.aggregate(parts as object[]).getMetricsAsJSON();
}

// ---------------------------------------------------------------------------------------------
// Primary side

export interface ClusterMetricsPrimary {
  /** Starts serving the worker's metrics requests and recording its reports. */
  attach(worker: ClusterWorker, index: number): void;
  /** Carries the exited worker's counters over to its successor. */
  detach(worker: ClusterWorker, index: number): Promise<void>;
  collect(): Promise<string>;
}

export function createClusterMetricsPrimary({ timeoutMs }: { timeoutMs: number }): ClusterMetricsPrimary {
  const workers = new Map<ClusterWorker, number>();
  const lastReport = new Map<ClusterWorker, MetricsJson>();
  const carried = new Map<number, MetricsJson>();
  const waiting = new Map<string, (metrics: MetricsJson) => void>();
  let nextId = 0;

  const askWorker = (worker: ClusterWorker, id: number): Promise<MetricsJson | undefined> =>
    new Promise((resolve) => {
      if (!worker.isConnected()) {
        resolve(lastReport.get(worker));
        return;
      }
      const key = `${worker.id}:${id}`;
      const timer = setTimeout(() => {
        waiting.delete(key);
        resolve(lastReport.get(worker));
      }, timeoutMs);
      waiting.set(key, (metrics) => {
        clearTimeout(timer);
        waiting.delete(key);
        lastReport.set(worker, metrics);
        resolve(metrics);
      });
      try {
        worker.send({ channel: MESSAGE, kind: 'collect', id } satisfies MetricsMessage);
      } catch {
        // The channel closed under us: the timer answers with the last report.
      }
    });

  const collect = async (): Promise<string> => {
    const id = (nextId += 1);
    const reports = await Promise.all([...workers.keys()].map((worker) => askWorker(worker, id)));
    const parts = [...carried.values(), ...reports.filter((report): report is MetricsJson => report !== undefined)];
    return AggregatorRegistry.aggregate(parts).metrics();
  };

  return {
    attach(worker, index) {
      workers.set(worker, index);
      worker.on('message', (message: unknown) => {
        if (!isMetricsMessage(message)) return;
        if (message.kind === 'report' && message.metrics) {
          waiting.get(`${worker.id}:${message.id}`)?.(message.metrics);
        } else if (message.kind === 'request') {
          collect().then(
            (text) => worker.isConnected() && worker.send({ channel: MESSAGE, kind: 'response', id: message.id, text } satisfies MetricsMessage),
            (error: unknown) =>
              worker.isConnected() &&
              worker.send({ channel: MESSAGE, kind: 'response', id: message.id, error: String(error) } satisfies MetricsMessage),
          );
        }
      });
    },
    async detach(worker, index) {
      // Until the carried totals are updated, scrapes keep using the dead worker's last report.
      const last = lastReport.get(worker);
      if (last) {
        const cumulative = last.filter((metric) => CUMULATIVE.has(String(metric.type)));
        const previous = carried.get(index);
        carried.set(index, previous ? await aggregate([previous, cumulative]) : cumulative);
      }
      workers.delete(worker);
      lastReport.delete(worker);
    },
    collect,
  };
}

// ---------------------------------------------------------------------------------------------
// Worker side

export interface ClusterMetricsClient {
  /** The whole cluster's metrics in the Prometheus text format. */
  scrape(): Promise<string>;
  close(): void;
}

export interface ClusterMetricsClientOptions {
  readonly registry: Registry;
  readonly timeoutMs: number;
  /** The IPC channel to the primary: `process` in a forked worker. */
  readonly channel: Pick<NodeJS.Process, 'on' | 'off' | 'send'>;
}

export function createClusterMetricsClient({ registry, timeoutMs, channel }: ClusterMetricsClientOptions): ClusterMetricsClient {
  const pending = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
  let nextId = 0;

  const onMessage = (message: unknown) => {
    if (!isMetricsMessage(message)) return;
    if (message.kind === 'collect') {
      registry.getMetricsAsJSON().then(
        (metrics) => channel.send?.({ channel: MESSAGE, kind: 'report', id: message.id, metrics } satisfies MetricsMessage),
        () => {},
      );
    } else if (message.kind === 'response') {
      const request = pending.get(message.id);
      pending.delete(message.id);
      if (message.text !== undefined) request?.resolve(message.text);
      else request?.reject(new Error(message.error ?? 'metrics collection failed'));
    }
  };
  channel.on('message', onMessage);

  return {
    scrape() {
      const id = (nextId += 1);
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error('the primary did not answer the metrics request in time'));
        }, timeoutMs);
        pending.set(id, {
          resolve: (text) => {
            clearTimeout(timer);
            resolve(text);
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        });
        if (!channel.send) {
          pending.delete(id);
          clearTimeout(timer);
          reject(new Error('not a cluster worker: no channel to the primary'));
          return;
        }
        channel.send({ channel: MESSAGE, kind: 'request', id } satisfies MetricsMessage);
      });
    },
    close() {
      channel.off('message', onMessage);
      for (const request of pending.values()) request.reject(new Error('closing'));
      pending.clear();
    },
  };
}
