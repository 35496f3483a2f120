/**
 * The group gauges, built at scrape time from the group ledger's counts, as the load gauges are from
 * the ledger's snapshot. Only the groups `topGroups` chooses have their own `group` label; the rest
 * are summed in `group="other"`.
 *
 * The counts are the whole pool's, whichever host reads them: `host` is the host that served the
 * scrape, so that the dashboard's host variable applies to these series too, and dashboards
 * de-duplicate the hosts' copies with `max by (group)`. There is no `worker` label: a group is no
 * process's.
 */
import { Gauge, Registry } from 'prom-client';
import { METRIC_PREFIX } from './process-metrics.js';
import { topGroups, type GroupTally } from './top-groups.js';

export interface GroupLabels {
  /** How many groups get a label of their own (GROUP_METRICS_TOP). */
  readonly top: number;
  /** The HOST_ID of the host serving the scrape. */
  readonly hostId: string;
}

export async function renderGroupMetrics(groups: readonly GroupTally[], { top, hostId }: GroupLabels): Promise<string> {
  const registry = new Registry();
  const registers = [registry];
  const gauge = (name: string, help: string) =>
    new Gauge({ name: `${METRIC_PREFIX}${name}`, help, labelNames: ['group', 'host'], registers });
  const waiting = gauge('group_waiting', 'Held jobs of the group, waiting for its turn (group ledger).');
  const inflight = gauge(
    'group_inflight',
    'Jobs of the group handed to a worker and not finished: queued there or running (group ledger).',
  );
  const running = gauge('group_running', 'Jobs of the group running (group ledger).');
  for (const tally of topGroups(groups, top)) {
    const labels = { group: tally.group, host: hostId };
    waiting.set(labels, tally.waiting);
    inflight.set(labels, tally.inflight);
    running.set(labels, tally.running);
  }
  return registry.metrics();
}
