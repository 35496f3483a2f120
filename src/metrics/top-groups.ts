/**
 * Which groups the group gauges of `/metrics` name. Groups are the clients' own words and have no
 * bound, and every label value is a series Prometheus keeps, so only the `top` groups with the
 * largest backlog get a label of their own and all the others are summed into `group="other"`, which
 * is always there. The order is total (waiting, then running, then the name), so that the same counts
 * always name the same groups and ties do not make the labels flap between scrapes.
 */
import type { GroupCounts } from '../ledger/groups.js';

/** The label of the sum of every group without a label of its own. */
export const OTHER_GROUP = 'other';

export interface GroupTally extends GroupCounts {
  readonly group: string;
}

/**
 * The `top` groups with work, largest backlog first, followed by `other`: the sum of the rest. A
 * group with nothing waiting, in flight or running never takes a label (it adds nothing to see), and
 * a group that is itself called `other` is always counted in `other`, so that no two series share the
 * label.
 */
export function topGroups(groups: readonly GroupTally[], top: number): GroupTally[] {
  const named = groups
    .filter((tally) => tally.group !== OTHER_GROUP && hasWork(tally))
    .sort(byBacklog)
    .slice(0, Math.max(0, top));
  const chosen = new Set(named);
  const other = { group: OTHER_GROUP, waiting: 0, inflight: 0, running: 0 };
  for (const tally of groups) {
    if (chosen.has(tally)) continue;
    other.waiting += tally.waiting;
    other.inflight += tally.inflight;
    other.running += tally.running;
  }
  return [...named, other];
}

function hasWork({ waiting, inflight, running }: GroupCounts): boolean {
  return waiting > 0 || inflight > 0 || running > 0;
}

function byBacklog(a: GroupTally, b: GroupTally): number {
  if (a.waiting !== b.waiting) return b.waiting - a.waiting;
  if (a.running !== b.running) return b.running - a.running;
  return a.group < b.group ? -1 : a.group > b.group ? 1 : 0;
}
