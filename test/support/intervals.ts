/** Overlap of time intervals: how many jobs ran at once, from their own start and end times. */
export function peakOverlap(intervals: readonly (readonly [number, number])[]): number {
  const events = intervals.flatMap(
    ([start, end]) =>
      [
        [start, 1],
        [end, -1],
      ] as const,
  );
  // Ends sort before starts at the same instant: a slot freed and reused is not an overlap.
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let current = 0;
  let peak = 0;
  for (const [, delta] of events) {
    current += delta;
    peak = Math.max(peak, current);
  }
  return peak;
}
