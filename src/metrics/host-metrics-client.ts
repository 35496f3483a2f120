/**
 * A process's side of the host-wide `/metrics`: it answers the primary's requests for its registry,
 * and asks the primary for the whole host's metrics when a scrape lands on it. A failed exchange is
 * logged at warn with its request id and counted in `bullpen_metrics_ipc_failures_total`.
 */
import type { Registry } from 'prom-client';
import { createIpcRequests, sendOver, type IpcEndpoint } from '../platform/ipc.js';
import { MetricsUnavailableError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import {
  ipcFailureCounter,
  isMetricsMessage,
  MESSAGE,
  WORKER_IPC_OPERATIONS,
  type MetricsMessage,
} from './host-metrics.js';

export interface HostMetricsClient {
  /** The whole host's metrics in the Prometheus text format; rejects with `MetricsUnavailableError`. */
  scrape(): Promise<string>;
  close(): void;
}

export interface HostMetricsClientOptions {
  /** This process's registry: what it reports, and where it counts its failed exchanges. */
  readonly registry: Registry;
  readonly timeoutMs: number;
  /** The IPC channel to the primary: `process` in a forked worker. */
  readonly channel: IpcEndpoint & { off(event: 'message', listener: (message: unknown) => void): unknown };
  readonly logger: Logger;
}

export function createHostMetricsClient({
  registry,
  timeoutMs,
  channel,
  logger,
}: HostMetricsClientOptions): HostMetricsClient {
  const failures = ipcFailureCounter(registry, ['operation']);
  for (const operation of WORKER_IPC_OPERATIONS) failures.inc({ operation }, 0);
  const requests = createIpcRequests<string>({ port: channel, timeoutMs, what: 'the cluster metrics' });

  const report = async (id: number): Promise<void> => {
    try {
      const metrics = await registry.getMetricsAsJSON();
      await sendOver(channel, { channel: MESSAGE, kind: 'report', id, metrics } satisfies MetricsMessage);
    } catch (error) {
      failures.inc({ operation: 'report' });
      logger.warn(
        { event: 'metrics.ipc-failed', err: error, requestId: id, operation: 'report' },
        "could not report this process's metrics to the primary",
      );
    }
  };

  const onMessage = (message: unknown) => {
    if (!isMetricsMessage(message)) return;
    if (message.kind === 'collect') void report(message.id);
    else if (message.kind === 'response') {
      requests.answer(
        message.id,
        message.text !== undefined
          ? { value: message.text }
          : { error: new Error(message.error ?? 'the primary failed the metrics collection') },
      );
    }
  };
  channel.on('message', onMessage);

  return {
    async scrape() {
      try {
        return await requests.request((id) => ({ channel: MESSAGE, kind: 'request', id }) satisfies MetricsMessage);
      } catch (error) {
        // Not logged here: the error answers the scrape, and the HTTP layer logs every 5xx.
        failures.inc({ operation: 'scrape' });
        throw new MetricsUnavailableError(error);
      }
    },
    close() {
      channel.off('message', onMessage);
      requests.close();
    },
  };
}
