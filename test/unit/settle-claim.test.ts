/**
 * settleClaim: what follows a claim of an idempotency key, for the enqueue routes and a schedule's
 * tick alike. The store here is a record of calls (the real one is exercised against Redis by the
 * idempotency and schedule tests); what is checked is which work runs, under which token, and when
 * the key is given up.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import type { AtomicRecord } from '../../src/contracts/dispatch.js';
import { settleClaim, type SettleOptions, type Work } from '../../src/idempotency/settle.js';
import { captureLogger } from '../support/capture-logger.js';

interface Answer {
  readonly jobId: string;
}

function store(release: (key: string, token: string) => Promise<void> = async () => {}) {
  const released: string[] = [];
  const recorded: { token: string; answer: unknown }[] = [];
  const { logger, lines } = captureLogger();
  const options: SettleOptions = {
    logger,
    idempotency: {
      answerRecord: (key, _hash, claim, answer) => {
        recorded.push({ token: claim.token, answer });
        return { key, value: JSON.stringify(answer), plan: '', marker: '', ttlSeconds: 60 };
      },
      release: async (key, token) => {
        released.push(`${key}/${token}`);
        await release(key, token);
      },
    },
  };
  return { options, released, recorded, lines };
}

/** Work that says what it was asked to do, and records its answer the way the dispatcher does. */
function work(calls: string[], extra: Partial<Work<Answer>> = {}): Work<Answer> {
  return {
    make: (record: (answer: Answer) => AtomicRecord) => {
      calls.push('make');
      record({ jobId: 'new' });
      return Promise.resolve({ jobId: 'new' });
    },
    resume: (record, planned) => {
      calls.push(`resume ${planned.jobId}`);
      record(planned);
      return Promise.resolve(planned);
    },
    ...extra,
  };
}

const CLAIMED = { kind: 'claimed', token: 'mine', at: 1 } as const;

describe('settleClaim', () => {
  test('an answer given before is given again, and nothing runs', async () => {
    const { options, released } = store();
    const calls: string[] = [];
    const settled = await settleClaim(options, 'k', 'h', { kind: 'replay', answer: { jobId: 'old' } }, work(calls));
    assert.deepEqual(settled, { kind: 'replayed', answer: { jobId: 'old' } });
    assert.deepEqual(calls, []);
    assert.deepEqual(released, []);
  });

  test("a dead claimer's plan is finished under its own token, and the key is kept", async () => {
    const { options, released, recorded } = store();
    const calls: string[] = [];
    const claim = { kind: 'resume', token: 'dead', answer: { jobId: 'planned' } } as const;
    const settled = await settleClaim(options, 'k', 'h', claim, work(calls));
    assert.deepEqual(settled, { kind: 'resumed', answer: { jobId: 'planned' } });
    assert.deepEqual(calls, ['resume planned']);
    assert.deepEqual(recorded, [{ token: 'dead', answer: { jobId: 'planned' } }]);
    assert.deepEqual(released, []);
  });

  test('a fresh claim does the work, recorded under the claim', async () => {
    const { options, released, recorded } = store();
    const calls: string[] = [];
    const settled = await settleClaim(options, 'k', 'h', CLAIMED, work(calls));
    assert.deepEqual(settled, { kind: 'made', answer: { jobId: 'new' } });
    assert.deepEqual(calls, ['make']);
    assert.deepEqual(recorded, [{ token: 'mine', answer: { jobId: 'new' } }]);
    assert.deepEqual(released, []);
  });

  test('declined: nothing runs and the key is given up; not declined, the work runs', async () => {
    const { options, released } = store();
    const calls: string[] = [];
    const declined = await settleClaim(
      options,
      'k',
      'h',
      CLAIMED,
      work(calls, { decline: () => Promise.resolve(true) }),
    );
    assert.deepEqual(declined, { kind: 'declined' });
    assert.deepEqual(calls, []);
    assert.deepEqual(released, ['k/mine']);

    const made = await settleClaim(options, 'k', 'h', CLAIMED, work(calls, { decline: () => Promise.resolve(false) }));
    assert.equal(made.kind, 'made');
    assert.deepEqual(calls, ['make']);
  });

  test('work that fails gives the key up and fails with its own error', async () => {
    const { options, released } = store();
    const failing = work([], {
      make: async () => {
        await tick();
        throw new Error('add refused');
      },
    });
    await assert.rejects(settleClaim(options, 'k', 'h', CLAIMED, failing), /add refused/);
    assert.deepEqual(released, ['k/mine']);
  });

  test('a decline that fails gives the key up too', async () => {
    const { options, released } = store();
    const failing = work([], {
      decline: () => Promise.reject(new Error('read refused')),
    });
    await assert.rejects(settleClaim(options, 'k', 'h', CLAIMED, failing), /read refused/);
    assert.deepEqual(released, ['k/mine']);
  });

  test('a key that cannot be given up after failed work is logged, and the work error is what fails', async () => {
    const { options, lines } = store(() => Promise.reject(new Error('redis away')));
    const failing = work([], {
      make: () => Promise.reject(new Error('add refused')),
    });
    await assert.rejects(settleClaim(options, 'k', 'h', CLAIMED, failing), /add refused/);
    assert.ok(lines.some((line) => line.event === 'idempotency.release-failed'));
  });
});
