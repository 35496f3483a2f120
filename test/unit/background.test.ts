/**
 * The background loops' own rules, without Redis: the periodic pass runs each of its steps whatever
 * the one before did, no retirement starts once the process drains, and a replaced consumer whose
 * close fails is logged instead of ending the process with an unhandled rejection.
 */
import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { oneRetirementAtATime, reconcilePass } from '../../src/process/background.js';
import { closeReplaced } from '../../src/queue/supervise.js';
import { captureLogger } from '../support/capture-logger.js';

const WARN = 40;

describe('the periodic pass', () => {
  test('a step that throws is logged under its own event, and the steps after it still run', async () => {
    const { logger, lines } = captureLogger();
    const ran: string[] = [];
    const failing = (step: string) => () => {
      ran.push(step);
      return Promise.reject(new Error(`${step} refused`));
    };
    const pass = reconcilePass({
      reconciler: { reconcile: failing('reconcile') },
      mover: { recover: failing('recover') },
      retirer: { purge: failing('purge') },
      releaser: { recover: failing('release') },
      jobLedger: { now: () => Promise.resolve(0) },
      graceMs: 1000,
      logger,
    });
    await pass();
    assert.deepEqual(ran, ['reconcile', 'recover', 'release', 'purge']);
    assert.deepEqual(
      lines.map((line) => [line.level, line.event, (line.err as { message?: string } | undefined)?.message]),
      [
        [WARN, 'reconcile.failed', 'reconcile refused'],
        [WARN, 'move.recovery-failed', 'recover refused'],
        [WARN, 'release.recovery-failed', 'release refused'],
        [WARN, 'retirement.purge-failed', 'purge refused'],
      ],
    );
  });
});

describe('retirement and draining', () => {
  test('ids due while the process drains are not retired; before it drains they are', async () => {
    const { logger } = captureLogger();
    const retired: string[] = [];
    let draining = false;
    const retirement = oneRetirementAtATime(
      {
        retirer: {
          retire: (id) => {
            retired.push(id);
            return Promise.resolve(true);
          },
        },
        logger,
      },
      () => draining,
    );
    retirement.retire(['a-0']);
    await retirement.underWay();
    assert.deepEqual(retired, ['a-0']);
    draining = true;
    retirement.retire(['b-0']);
    assert.equal(retirement.underWay(), undefined, 'nothing started');
    await turn();
    assert.deepEqual(retired, ['a-0']);
  });
});

describe('a replaced consumer', () => {
  test('a close that fails is logged, and its rejection is handled', async () => {
    const { logger, lines } = captureLogger();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      await closeReplaced(
        { close: () => Promise.reject(new Error('Connection is closed.')) },
        logger,
        'queue consumer',
      );
      await turn();
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    assert.deepEqual(unhandled, []);
    const [line] = lines.filter((each) => each.event === 'consumer.close-failed');
    assert.equal(line?.level, WARN);
    assert.equal(line?.consumer, 'queue consumer');
  });
});
