/**
 * The connections through Redis Sentinel (src/redis/connections.ts) follow a promotion even when the
 * sentinels answer slowly. A master that dies leaves every connection reconnecting, each reconnect
 * asking the sentinels for the master; the sentinels then announce the promotion (`+switch-master`).
 * With ioredis's own failover detector, an announcement that arrived while a reconnect was still
 * waiting for the sentinels' answer ended that connection for good ("Connection is closed." for every
 * command after), which CI saw as one process answering 503 for a minute after a promotion
 * (sentinel-failover.test.ts). Here the sentinels are reached through a proxy that holds their
 * answers back, as a loaded machine does, so that the announcement lands in that window: every
 * connection, of each role, must still end up on the promoted master.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRedisConnection, closeConnection, type RedisClient } from '../../src/redis/connections.js';
import type { Redis } from '../../src/redis/ioredis.js';
import { sentinelListSchema, sentinelTarget } from '../../src/redis/target.js';
import { captureLogger } from '../support/capture-logger.js';
import { startRedisSentinel, type TestSentinel } from '../support/redis-sentinel.js';
import { startSlowProxy, type SlowProxy } from '../support/slow-proxy.js';
import { waitFor } from '../support/wait.js';

/**
 * How long the proxies hold back each answer of a sentinel once the connections are up. A reconnect
 * asks a sentinel twice (the master's address, then the other sentinels), so each takes twice this:
 * the promotion, about two seconds after the kill, is announced while the first reconnects still wait.
 */
const SENTINEL_DELAY_MS = 2_000;
const PER_ROLE = 8;

/** True while no connection has ended; throws, naming how many, once one has (it never comes back). */
function assertNoneEnded(ended: ReadonlySet<unknown>, of: number): true {
  assert.equal(ended.size, 0, `${ended.size} of ${of} connections were closed for good`);
  return true;
}

describe('Sentinel connections through a promotion, with slow sentinels', { timeout: 180_000 }, () => {
  let sentinel: TestSentinel;
  let proxies: SlowProxy[] = [];
  let connections: Redis[] = [];

  before(async () => {
    sentinel = await startRedisSentinel();
    proxies = await Promise.all(sentinelListSchema.parse(sentinel.sentinels).nodes.map((node) => startSlowProxy(node)));
  });

  after(async () => {
    await Promise.all(connections.map((connection) => closeConnection(connection)));
    await Promise.all(proxies.map((proxy) => proxy.stop()));
    await sentinel?.stop();
  });

  test('every connection, of each role, serves the promoted master; none is closed for good', async () => {
    const target = sentinelTarget(
      sentinelListSchema.parse(proxies.map(({ address }) => address).join(',')),
      sentinel.master,
      { username: undefined, password: undefined },
    );
    const { logger } = captureLogger();
    const roles = ['command', 'consumer', 'subscriber'] as const;
    connections = roles.flatMap((role) =>
      Array.from({ length: PER_ROLE }, () => {
        const connection: RedisClient = createRedisConnection(target, role, logger, { commandTimeoutMs: 1_000 });
        return connection as Redis;
      }),
    );
    const ended = new Set<Redis>();
    for (const connection of connections) connection.on('end', () => ended.add(connection));
    await waitFor(() => connections.every((connection) => connection.status === 'ready'), {
      timeoutMs: 30_000,
      what: 'every connection to be ready',
    });
    // Slow from now on: each connection's next sentinel (they take turns) is a proxy, as the real
    // sentinels it learnt from the first answer come after the proxies in its list.
    for (const proxy of proxies) proxy.setDelay(SENTINEL_DELAY_MS);
    // The subscriber-role connections stay idle, as between messages; the others keep a command going.
    let going = true;
    const load = connections
      .filter((_, index) => index < 2 * PER_ROLE)
      .map(async (connection) => {
        while (going && connection.status !== 'end') {
          await connection.ping().catch(() => undefined);
          await sleep(20);
        }
      });

    const old = await sentinel.killMaster();
    const promoted = await sentinel.waitForPromotion(old);
    try {
      await waitFor(
        () =>
          assertNoneEnded(ended, connections.length) &&
          connections.every(
            (connection) =>
              connection.status === 'ready' &&
              `${connection.stream.remoteAddress}:${connection.stream.remotePort}` === promoted,
          ),
        { timeoutMs: 60_000, intervalMs: 100, what: 'every connection on the promoted master' },
      );
    } finally {
      going = false;
      await Promise.all(load);
    }
    assertNoneEnded(ended, connections.length);
    const answers = await Promise.all(connections.slice(0, 2 * PER_ROLE).map((connection) => connection.ping()));
    assert.ok(answers.every((answer) => answer === 'PONG'));
  });
});
