/**
 * The selection rule, as a pure function. The atomic decision is made in Lua, written once in
 * `src/ledger/lua/includes/least-loaded.lua` and used by `reserve-n.lua` (a new job) and
 * `move-begin-7.lua` (a job leaving a retired id); this is its specification in TypeScript,
 * unit-tested on its own and checked, on a real Redis, against both scripts
 * (test/integration/ledger-rules.test.ts), so the rule can be read and reasoned about without
 * reading Lua.
 */
export interface Candidate {
  readonly id: string;
  readonly queued: number;
  readonly active: number;
  readonly concurrency: number;
}

/**
 * Picks the candidate with the least load (queued + active) relative to its concurrency. Candidates
 * are considered in id order, starting at `cursor % n`; the first of equally loaded ones wins, so a
 * cursor that advances on every pick spreads ties over all workers.
 */
export function pickLeastLoaded(candidates: readonly Candidate[], cursor: number): Candidate | undefined {
  const sorted = [...candidates].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const n = sorted.length;
  const start = Number.isFinite(cursor) ? ((Math.trunc(cursor) % n) + n) % n : 0;
  let best: Candidate | undefined;
  for (let step = 0; step < n; step += 1) {
    const candidate = sorted[(start + step) % n];
    if (candidate === undefined) continue;
    if (best === undefined || load(candidate) * best.concurrency < load(best) * candidate.concurrency) {
      best = candidate;
    }
  }
  return best;
}

function load(candidate: Candidate): number {
  return candidate.queued + candidate.active;
}
