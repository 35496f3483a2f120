/**
 * The primary's side of one host-wide `/metrics`, whichever process a scrape lands on. The process
 * that receives the scrape asks the primary over IPC; the primary asks every live process for its
 * registry as JSON, waits a bounded time, and sums them with prom-client's `AggregatorRegistry`.
 *
 * prom-client's own `clusterMetrics()` is not used: it fails the whole scrape when one process does
 * not answer within 5 s, and a process killed a moment ago still counts. Here a process that does not
 * answer in time is represented by its last report.
 *
 * Counters must never go backwards, but a re-forked process starts its counters at 0. So when a
 * process exits, the counters and histograms of its last report are carried over and added to its
 * successor's, which serves the same worker id and so carries the same `worker` label.
 *
 * A failed exchange is logged at warn with its request id and counted in
 * `bullpen_metrics_ipc_failures_total`: by the process when it cannot send its report or its scrape
 * gets no answer, and by the primary, on that process's behalf, when a process does not answer in
 * time or cannot be answered.
 */
import { AggregatorRegistry, Registry } from 'prom-client';
import { createIpcRequests, sendOver, type IpcEndpoint, type IpcRequests } from '../platform/ipc.js';
import type { Logger } from '../logging/logger.js';
import { workerIdFor } from '../contracts/names.js';
import {
  ipcFailureCounter,
  isMetricsMessage,
  MESSAGE,
  PRIMARY_IPC_OPERATIONS,
  type MetricsIpcOperation,
  type MetricsJson,
  type MetricsMessage,
} from './host-metrics.js';

/** Only what accumulates may be carried over from a dead process; its gauges died with it. */
const CUMULATIVE = new Set(['counter', 'histogram', 'summary']);

async function aggregate(parts: readonly MetricsJson[]): Promise<MetricsJson> {
  return AggregatorRegistry.aggregate(parts as object[]).getMetricsAsJSON();
}

/** What the primary needs of a forked process; node:cluster's `Worker` has it. */
export interface ReportingProcess extends IpcEndpoint {
  isConnected(): boolean;
  once(event: 'disconnect', listener: () => void): unknown;
}

export interface HostMetricsPrimary {
  /** Starts serving the process's metrics requests and recording its reports. */
  attach(child: ReportingProcess, index: number): void;
  /** Carries the exited process's counters over to its successor. */
  detach(child: ReportingProcess, index: number): Promise<void>;
  collect(): Promise<string>;
}

export interface HostMetricsPrimaryOptions {
  /** How long a process is given to report before its last report stands in. */
  readonly timeoutMs: number;
  /** This primary's HOST_ID: with a process's index, its worker id, for logs and labels. */
  readonly hostId: string;
  readonly logger: Logger;
}

interface Attached {
  readonly workerId: string;
  readonly requests: IpcRequests<MetricsJson>;
}

export function createHostMetricsPrimary({ timeoutMs, hostId, logger }: HostMetricsPrimaryOptions): HostMetricsPrimary {
  const children = new Map<ReportingProcess, Attached>();
  const lastReport = new Map<ReportingProcess, MetricsJson>();
  const carried = new Map<number, MetricsJson>();
  // The primary's own series: failures it saw, labelled with the worker id they concern. They live
  // as long as the primary, so a re-forked process's count carries on by itself.
  const own = new Registry();
  const failures = ipcFailureCounter(own, ['operation', 'worker', 'host']);

  const failed = (
    operation: MetricsIpcOperation,
    workerId: string,
    requestId: number | undefined,
    error: unknown,
    message: string,
  ) => {
    failures.inc({ operation, worker: workerId, host: hostId });
    logger.warn({ event: 'metrics.ipc-failed', err: error, workerId, requestId, operation }, message);
  };

  const askProcess = async (
    child: ReportingProcess,
    { workerId, requests }: Attached,
  ): Promise<MetricsJson | undefined> => {
    if (!child.isConnected()) return lastReport.get(child);
    let requestId: number | undefined;
    try {
      // The report is recorded as it arrives (see attach), not here: by the time this resumes, the
      // process may have exited and been carried over.
      return await requests.request((id) => {
        requestId = id;
        return { channel: MESSAGE, kind: 'collect', id } satisfies MetricsMessage;
      });
    } catch (error) {
      // A process detached meanwhile has exited: its report is carried over, nothing failed.
      if (children.has(child)) {
        failed(
          'collect',
          workerId,
          requestId,
          error,
          'a process did not report its metrics in time; its last report stands in',
        );
      }
      return lastReport.get(child);
    }
  };

  /** Resolves once no more messages can come from the child: its channel closed, or the time-out. */
  const channelClosed = (child: ReportingProcess): Promise<void> =>
    child.isConnected()
      ? new Promise((resolve) => {
          const timer = setTimeout(resolve, timeoutMs);
          child.once('disconnect', () => {
            clearTimeout(timer);
            resolve();
          });
        })
      : Promise.resolve();

  const collect = async (): Promise<string> => {
    const asked = [...children].map(async ([child, attached]) => ({
      child,
      report: await askProcess(child, attached),
    }));
    const [answers, ownPart] = await Promise.all([Promise.all(asked), own.getMetricsAsJSON()]);
    // Read in one step with the carried totals: a process detached while this collection waited has
    // its counts in `carried` now, and counting its report as well would count them twice.
    const parts = [
      ...carried.values(),
      ...answers.flatMap(({ child, report }) => (report !== undefined && children.has(child) ? [report] : [])),
      ownPart,
    ];
    return AggregatorRegistry.aggregate(parts).metrics();
  };

  const respond = async (child: ReportingProcess, workerId: string, id: number): Promise<void> => {
    let answer: MetricsMessage;
    try {
      answer = { channel: MESSAGE, kind: 'response', id, text: await collect() };
    } catch (error) {
      failed('respond', workerId, id, error, "could not gather the host's metrics for a process's scrape");
      answer = { channel: MESSAGE, kind: 'response', id, error: String(error) };
    }
    if (!child.isConnected()) return;
    await sendOver(child, answer).catch((error: unknown) =>
      failed('respond', workerId, id, error, "could not send the host's metrics to the process that asked"),
    );
  };

  return {
    attach(child, index) {
      const workerId = workerIdFor(hostId, index);
      const requests = createIpcRequests<MetricsJson>({
        port: child,
        timeoutMs,
        what: `the metrics of worker ${workerId}`,
      });
      children.set(child, { workerId, requests });
      for (const operation of PRIMARY_IPC_OPERATIONS) failures.inc({ operation, worker: workerId, host: hostId }, 0);
      child.on('message', (message: unknown) => {
        if (!isMetricsMessage(message)) return;
        if (message.kind === 'report' && message.metrics) {
          lastReport.set(child, message.metrics);
          requests.answer(message.id, { value: message.metrics });
        } else if (message.kind === 'request') void respond(child, workerId, message.id);
      });
    },
    async detach(child, index) {
      // A report the process sent just before it died may still be in the channel after the exit is
      // known: carry over only once the channel has closed, when nothing more can arrive. Until the
      // carried totals are updated, scrapes keep using the dead process's last report.
      await channelClosed(child);
      const last = lastReport.get(child);
      if (last) {
        const cumulative = last.filter((metric) => CUMULATIVE.has(String(metric.type)));
        const previous = carried.get(index);
        carried.set(index, previous ? await aggregate([previous, cumulative]) : cumulative);
      }
      const attached = children.get(child);
      children.delete(child);
      lastReport.delete(child);
      // A collection still waiting for the dead process ends now, rather than at its time-out.
      attached?.requests.close();
    },
    collect,
  };
}
