import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pickLeastLoaded, type Candidate } from '../../src/ledger/least-loaded.js';
import { seededRandom } from '../support/random.js';

function candidate(id: string, queued: number, active = 0, concurrency = 8): Candidate {
  return { id, queued, active, concurrency };
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    const a = copy[i] as T;
    copy[i] = copy[j] as T;
    copy[j] = a;
  }
  return copy;
}

const ratio = (c: Candidate): number => (c.queued + c.active) / c.concurrency;

describe('pickLeastLoaded', () => {
  test('no candidates gives undefined', () => {
    assert.equal(pickLeastLoaded([], 0), undefined);
    assert.equal(pickLeastLoaded([], 7), undefined);
  });

  test('a single candidate is always picked, whatever its load', () => {
    const only = candidate('w-0', 100, 100);
    assert.equal(pickLeastLoaded([only], 0), only);
    assert.equal(pickLeastLoaded([only], 5), only);
  });

  test('picks the candidate with the smallest queued + active', () => {
    const a = candidate('a', 3, 1);
    const b = candidate('b', 0, 2);
    const c = candidate('c', 1, 3);
    for (let cursor = 0; cursor < 6; cursor += 1) {
      assert.equal(pickLeastLoaded([a, b, c], cursor)?.id, 'b');
    }
  });

  test('queued and active both count toward load', () => {
    const busyActive = candidate('a', 0, 5);
    const busyQueued = candidate('b', 5, 0);
    const light = candidate('c', 2, 2);
    assert.equal(pickLeastLoaded([busyActive, busyQueued, light], 0)?.id, 'c');
  });

  test('returns the candidate object that was passed in', () => {
    const b = candidate('b', 0);
    const picked = pickLeastLoaded([candidate('a', 1), b], 0);
    assert.equal(picked, b);
  });

  test('load is relative to concurrency', () => {
    const big = candidate('big', 8, 0, 16);
    const smallTie = candidate('small', 4, 0, 8);
    const smallWorse = candidate('small', 5, 0, 8);
    // 8/16 == 4/8: a tie, so the cursor decides (ids sorted: big, small).
    assert.equal(pickLeastLoaded([big, smallTie], 0)?.id, 'big');
    assert.equal(pickLeastLoaded([big, smallTie], 1)?.id, 'small');
    // 8/16 < 5/8: the bigger worker wins from every start.
    assert.equal(pickLeastLoaded([big, smallWorse], 0)?.id, 'big');
    assert.equal(pickLeastLoaded([big, smallWorse], 1)?.id, 'big');
    assert.equal(pickLeastLoaded([smallWorse, big], 1)?.id, 'big');
  });

  test('a larger absolute load can win when the concurrency is larger', () => {
    const big = candidate('a', 10, 0, 32); // 0.3125
    const small = candidate('b', 1, 0, 2); // 0.5
    assert.equal(pickLeastLoaded([big, small], 1)?.id, 'a');
  });

  test('ties are resolved by rotating over the id-sorted candidates from cursor % n', () => {
    const idle = [candidate('c', 0), candidate('a', 0), candidate('b', 0)];
    assert.equal(pickLeastLoaded(idle, 0)?.id, 'a');
    assert.equal(pickLeastLoaded(idle, 1)?.id, 'b');
    assert.equal(pickLeastLoaded(idle, 2)?.id, 'c');
    assert.equal(pickLeastLoaded(idle, 3)?.id, 'a');
    assert.equal(pickLeastLoaded(idle, 301)?.id, 'b');
  });

  test('the rotation starts at the cursor and wraps to the first tied candidate after it', () => {
    // Sorted: a(1) b(0) c(2) d(0). Ties at b and d.
    const list = [candidate('a', 1), candidate('b', 0), candidate('c', 2), candidate('d', 0)];
    assert.equal(pickLeastLoaded(list, 0)?.id, 'b');
    assert.equal(pickLeastLoaded(list, 1)?.id, 'b');
    assert.equal(pickLeastLoaded(list, 2)?.id, 'd');
    assert.equal(pickLeastLoaded(list, 3)?.id, 'd');
  });

  test('negative cursors rotate like their positive remainder', () => {
    const idle = [candidate('a', 0), candidate('b', 0), candidate('c', 0)];
    assert.equal(pickLeastLoaded(idle, -1)?.id, 'c');
    assert.equal(pickLeastLoaded(idle, -2)?.id, 'b');
    assert.equal(pickLeastLoaded(idle, -3)?.id, 'a');
    assert.equal(pickLeastLoaded(idle, -4)?.id, 'c');
  });

  test('huge cursors work', () => {
    const idle = [candidate('a', 0), candidate('b', 0), candidate('c', 0)];
    // MAX_SAFE_INTEGER = 9007199254740991, and 9007199254740991 % 3 === 1.
    assert.equal(pickLeastLoaded(idle, Number.MAX_SAFE_INTEGER)?.id, 'b');
    // -9007199254740991 is 2 mod 3.
    assert.equal(pickLeastLoaded(idle, -Number.MAX_SAFE_INTEGER)?.id, 'c');
    assert.equal(pickLeastLoaded(idle, 2 ** 40)?.id, ['a', 'b', 'c'][2 ** 40 % 3]);
  });

  test('input order does not matter', () => {
    const random = seededRandom(42);
    const list = [
      candidate('w-3', 2),
      candidate('w-1', 1),
      candidate('w-0', 1),
      candidate('w-2', 1),
      candidate('w-4', 3),
    ];
    for (let cursor = 0; cursor < 10; cursor += 1) {
      const expected = pickLeastLoaded(list, cursor)?.id;
      assert.ok(expected !== undefined);
      for (let round = 0; round < 10; round += 1) {
        assert.equal(pickLeastLoaded(shuffled(list, random), cursor)?.id, expected);
      }
    }
  });

  test('does not modify the input array', () => {
    const list = [candidate('c', 0), candidate('a', 0), candidate('b', 0)];
    const before = list.map((c) => c.id);
    pickLeastLoaded(list, 1);
    assert.deepEqual(
      list.map((c) => c.id),
      before,
    );
  });

  test('64 picks over 4 idle workers of concurrency 8 give 16 each, never more than 1 apart', () => {
    const queued = new Map<string, number>([
      ['w-0', 0],
      ['w-1', 0],
      ['w-2', 0],
      ['w-3', 0],
    ]);
    const snapshot = (): Candidate[] => [...queued].map(([id, q]) => candidate(id, q));
    for (let cursor = 0; cursor < 64; cursor += 1) {
      const picked = pickLeastLoaded(snapshot(), cursor);
      assert.ok(picked !== undefined);
      queued.set(picked.id, (queued.get(picked.id) ?? 0) + 1);
      const loads = [...queued.values()];
      assert.ok(Math.max(...loads) - Math.min(...loads) <= 1, `after pick ${cursor + 1}: ${loads.join(',')}`);
    }
    assert.deepEqual([...queued.values()], [16, 16, 16, 16]);
  });

  test('a simulation with mixed concurrency keeps relative loads within one slot', () => {
    const workers = new Map<string, Candidate>([
      ['a', candidate('a', 0, 0, 4)],
      ['b', candidate('b', 0, 0, 8)],
      ['c', candidate('c', 0, 0, 16)],
    ]);
    for (let cursor = 0; cursor < 280; cursor += 1) {
      const picked = pickLeastLoaded([...workers.values()], cursor);
      assert.ok(picked !== undefined);
      workers.set(picked.id, { ...picked, queued: picked.queued + 1 });
    }
    // 280 jobs over 28 slots: 10 per slot.
    assert.deepEqual(
      [...workers.values()].map((w) => w.queued),
      [40, 80, 160],
    );
  });

  test('randomized: the chosen candidate always has the minimal load/concurrency', () => {
    const random = seededRandom(0xb011be);
    const int = (max: number): number => Math.floor(random() * (max + 1));
    for (let round = 0; round < 2000; round += 1) {
      const n = 1 + int(7);
      const list: Candidate[] = [];
      for (let i = 0; i < n; i += 1) {
        list.push({ id: `w-${int(1000)}-${i}`, queued: int(20), active: int(20), concurrency: 1 + int(31) });
      }
      const cursor = int(1_000_000) - 500_000;
      const picked = pickLeastLoaded(list, cursor);
      assert.ok(picked !== undefined);
      assert.ok(list.includes(picked), 'the pick is one of the candidates');
      const minimum = Math.min(...list.map(ratio));
      // Compare exactly with cross-multiplication, as floats of equal ratios may differ.
      for (const other of list) {
        assert.ok(
          (picked.queued + picked.active) * other.concurrency <= (other.queued + other.active) * picked.concurrency,
          `round ${round}: picked ${picked.id} (${ratio(picked)}) over ${other.id} (${ratio(other)}), min ${minimum}`,
        );
      }
      // Among the tied, the first one in id order from cursor % n is chosen.
      const sorted = [...list].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
      const start = ((cursor % n) + n) % n;
      const rotated = [...sorted.slice(start), ...sorted.slice(0, start)];
      const firstTied = rotated.find(
        (c) => (c.queued + c.active) * picked.concurrency === (picked.queued + picked.active) * c.concurrency,
      );
      assert.equal(picked, firstTied);
    }
  });
});
