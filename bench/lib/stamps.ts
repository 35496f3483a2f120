/**
 * What the `stamp` handler (bench/handlers/stamp.ts) reports of each job, and the slot idle gaps the
 * scenarios read from those reports: a slot is one thread of one process.
 */
export interface Stamp {
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly threadId: number;
  readonly pid: number;
}

/**
 * How long each slot stayed idle between one body's end and the next body's start (ms), for the ends
 * `counted` keeps (all by default).
 */
export function slotGaps(stamps: readonly Stamp[], counted: (end: number) => boolean = () => true): number[] {
  const bySlot = new Map<string, Stamp[]>();
  for (const stamp of stamps) {
    const slot = `${stamp.pid}/${stamp.threadId}`;
    bySlot.set(slot, [...(bySlot.get(slot) ?? []), stamp]);
  }
  const gaps: number[] = [];
  for (const runs of bySlot.values()) {
    runs.sort((a, b) => a.startedAt - b.startedAt);
    for (let i = 1; i < runs.length; i += 1) {
      const end = runs[i - 1]?.finishedAt ?? 0;
      if (counted(end)) gaps.push((runs[i]?.startedAt ?? 0) - end);
    }
  }
  return gaps;
}
