/**
 * The bound on the group gauges' labels (src/metrics/top-groups.ts): the `top` groups with the largest
 * backlog are named, by waiting, then running, then name, whatever order the ledger lists them in;
 * every other group is summed into `other`, which is always there; idle groups and a group called
 * `other` never take a label. And the exposition built from that choice.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderGroupMetrics } from '../../src/metrics/group-metrics.js';
import { OTHER_GROUP, topGroups, type GroupTally } from '../../src/metrics/top-groups.js';
import { parseMetrics } from '../support/prom-text.js';
import { seededRandom } from '../support/random.js';

function tally(group: string, waiting: number, running = 0, inflight = running): GroupTally {
  return { group, waiting, inflight, running };
}

const names = (chosen: readonly GroupTally[]): string[] => chosen.map(({ group }) => group);
const otherOf = (chosen: readonly GroupTally[]): GroupTally | undefined =>
  chosen.find(({ group }) => group === OTHER_GROUP);

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy;
}

describe('topGroups', () => {
  test('names the groups with most waiting, largest first, and sums the rest into other', () => {
    const groups = [tally('a', 1, 1, 3), tally('b', 9, 0, 2), tally('c', 5, 2, 2), tally('d', 2, 4, 6)];
    const chosen = topGroups(groups, 2);
    assert.deepEqual(names(chosen), ['b', 'c', OTHER_GROUP]);
    assert.deepEqual(otherOf(chosen), { group: OTHER_GROUP, waiting: 3, inflight: 9, running: 5 });
  });

  test('ties on waiting go to the group with more running, then to the first name', () => {
    const groups = [tally('zeta', 4, 0), tally('beta', 4, 1), tally('alpha', 4, 1), tally('omega', 4, 3)];
    assert.deepEqual(names(topGroups(groups, 3)), ['omega', 'alpha', 'beta', OTHER_GROUP]);
    // A group with running work but nothing waiting ranks after any group with a backlog.
    assert.deepEqual(names(topGroups([tally('busy', 0, 8), tally('queued', 1, 0)], 1)), ['queued', OTHER_GROUP]);
  });

  test('the choice does not depend on the order the groups are listed in', () => {
    const random = seededRandom(22);
    const groups = Array.from({ length: 40 }, (_, i) => tally(`g${i}`, i % 5, i % 3, (i % 3) + (i % 2)));
    const expected = topGroups(groups, 7);
    for (let round = 0; round < 20; round += 1) {
      assert.deepEqual(topGroups(shuffled(groups, random), 7), expected);
    }
  });

  test('the labelled groups and other add up to every group', () => {
    const random = seededRandom(5);
    const groups = Array.from({ length: 30 }, (_, i) =>
      tally(`t-${i}`, Math.floor(random() * 10), Math.floor(random() * 3), Math.floor(random() * 6)),
    );
    for (const top of [0, 1, 5, 30, 100]) {
      const chosen = topGroups(groups, top);
      for (const count of ['waiting', 'inflight', 'running'] as const) {
        const sum = (list: readonly GroupTally[]) => list.reduce((total, item) => total + item[count], 0);
        assert.equal(sum(chosen), sum(groups), `${count} with top ${top}`);
      }
      assert.ok(chosen.length <= top + 1, `at most ${top} named groups and other`);
    }
  });

  test('other is always there: with no groups, with top 0, and when every group has a label', () => {
    const zero = { group: OTHER_GROUP, waiting: 0, inflight: 0, running: 0 };
    assert.deepEqual(topGroups([], 20), [zero]);
    assert.deepEqual(topGroups([tally('a', 3, 1)], 0), [{ group: OTHER_GROUP, waiting: 3, inflight: 1, running: 1 }]);
    assert.deepEqual(topGroups([tally('a', 3), tally('b', 1)], 5), [tally('a', 3), tally('b', 1), zero]);
  });

  test('a group without work takes no label, and its zeros go to other', () => {
    const groups = [tally('configured', 0, 0, 0), tally('busy', 0, 1), tally('backlog', 2)];
    assert.deepEqual(names(topGroups(groups, 5)), ['backlog', 'busy', OTHER_GROUP]);
  });

  test('a group called other is always counted in other and takes no top place', () => {
    const chosen = topGroups([tally('other', 50, 2), tally('a', 3), tally('b', 2), tally('c', 1)], 2);
    assert.deepEqual(names(chosen), ['a', 'b', OTHER_GROUP]);
    assert.deepEqual(otherOf(chosen), { group: OTHER_GROUP, waiting: 51, inflight: 2, running: 2 });
  });
});

describe('renderGroupMetrics', () => {
  test('three gauges per chosen group and other, labelled with the group and the serving host', async () => {
    const text = await renderGroupMetrics([tally('a', 4, 1, 2), tally('b', 1), tally('c', 2, 3, 3)], {
      top: 1,
      hostId: 'alpha',
    });
    assert.match(text, /^# TYPE bullpen_group_waiting gauge$/m);
    assert.match(text, /^# TYPE bullpen_group_inflight gauge$/m);
    assert.match(text, /^# TYPE bullpen_group_running gauge$/m);
    const samples = parseMetrics(text).map(({ name, labels, value }) => [name, labels, value]);
    assert.deepEqual(samples, [
      ['bullpen_group_waiting', { group: 'a', host: 'alpha' }, 4],
      ['bullpen_group_waiting', { group: OTHER_GROUP, host: 'alpha' }, 3],
      ['bullpen_group_inflight', { group: 'a', host: 'alpha' }, 2],
      ['bullpen_group_inflight', { group: OTHER_GROUP, host: 'alpha' }, 3],
      ['bullpen_group_running', { group: 'a', host: 'alpha' }, 1],
      ['bullpen_group_running', { group: OTHER_GROUP, host: 'alpha' }, 3],
    ]);
  });

  test('with no group at all, other is there at 0', async () => {
    const samples = parseMetrics(await renderGroupMetrics([], { top: 20, hostId: 'alpha' }));
    assert.deepEqual(
      samples.map(({ name, labels, value }) => [name, labels.group, value]),
      [
        ['bullpen_group_waiting', OTHER_GROUP, 0],
        ['bullpen_group_inflight', OTHER_GROUP, 0],
        ['bullpen_group_running', OTHER_GROUP, 0],
      ],
    );
  });
});
