/**
 * When the stealer looks at the ledger: on demand (a heartbeat), and a moment after a slot frees
 * only if the slot is still free then, so that a worker whose own queue refills its slots does not
 * ask the ledger for a victim at every job's end.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { createStealer, SLOT_SETTLE_MS } from '../../src/ownership/stealer.js';

function stealerWith(freeSlots: () => number) {
  const picks: string[] = [];
  const stealer = createStealer({
    workerId: 'w-0',
    ledger: {
      pickVictim: (thief) => {
        picks.push(thief);
        return Promise.resolve(undefined);
      },
    },
    transfer: { oldestWaiting: () => Promise.resolve([]) },
    mover: { move: () => Promise.resolve('moved') },
    freeSlots,
    logger: pino({ level: 'silent' }),
  });
  return { stealer, picks };
}

describe('work stealing passes', () => {
  test('a freed slot that is taken again a moment later costs no look at the ledger', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let free = 1;
    const { stealer, picks } = stealerWith(() => free);
    stealer.slotFreed();
    free = 0; // BullMQ fetched the next job of this worker's own queue
    t.mock.timers.tick(SLOT_SETTLE_MS);
    assert.deepEqual(picks, []);
  });

  test('a slot still free a moment later starts one pass, however many slots freed meanwhile', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { stealer, picks } = stealerWith(() => 3);
    stealer.slotFreed();
    stealer.slotFreed();
    stealer.slotFreed();
    t.mock.timers.tick(SLOT_SETTLE_MS - 1);
    assert.deepEqual(picks, [], 'not before the slot has settled');
    t.mock.timers.tick(1);
    await stealer.stop();
    assert.deepEqual(picks, ['w-0'], 'one pass, which found no victim');
  });

  test('a heartbeat starts a pass at once, and a stopped stealer starts none', async () => {
    const { stealer, picks } = stealerWith(() => 1);
    stealer.trigger();
    await stealer.stop();
    assert.deepEqual(picks, ['w-0']);
    stealer.trigger();
    stealer.slotFreed();
    assert.deepEqual(picks, ['w-0']);
  });
});
