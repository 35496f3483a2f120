/**
 * Commands that a Redis Cluster answers node by node. KEYS, FLUSHDB and PUBSUB NUMSUB carry no key,
 * so an ioredis `Cluster` sends them to one node of its choice, which knows only its own keys and its
 * own subscribers. These helpers ask every master and add up what they say; on one Redis they are the
 * plain command. Tests use them for what they assert across the whole keyspace, and what they assert
 * of one node (that it asks for a password).
 */
import assert from 'node:assert/strict';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis } from 'ioredis';
import type { RedisClient } from '../../src/redis/connections.js';

/** The nodes that hold keys: every master of a cluster, or the one server. */
function keyHolders(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

/** Every key matching `pattern`, on whichever master it lives. */
export async function keysEverywhere(client: RedisClient, pattern: string): Promise<string[]> {
  const perNode = await Promise.all(keyHolders(client).map((node) => node.keys(pattern)));
  // KEYS answers in hash-table order, which a rehash or another node's share can change between two
  // calls: sorted, two lists of the same keys compare equal.
  return perNode.flat().sort();
}

/** Empties the database of every master. */
export async function flushEverywhere(client: RedisClient): Promise<void> {
  await Promise.all(keyHolders(client).map((node) => node.flushdb()));
}

/**
 * How many connections listen on `channel`, over every node. On a cluster PUBLISH reaches every node's
 * subscribers but counts only those of the node it was sent to, so its answer cannot say this.
 */
export async function subscriberCount(client: RedisClient, channel: string): Promise<number> {
  const nodes = client instanceof Cluster ? client.nodes('all') : [client];
  const counts = await Promise.all(
    nodes.map(async (node) => {
      const [, count] = (await node.pubsub('NUMSUB', channel)) as [string, number];
      return Number(count);
    }),
  );
  return counts.reduce((sum, count) => sum + count, 0);
}

/**
 * Asserts that the Redis at `host:port` refuses a client that gives no password (NOAUTH). `tls` is
 * the client's TLS options, for a server that speaks TLS only; `command` what it is asked (a sentinel
 * knows no GET).
 */
export async function assertRefusesWithoutPassword(
  { host, port }: { readonly host: string; readonly port: number },
  tls?: ConnectionOptions,
  command: readonly [string, ...string[]] = ['GET', 'anything'],
): Promise<void> {
  const anonymous = new Redis({
    host,
    port,
    ...(tls === undefined ? {} : { tls }),
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableReadyCheck: false,
  });
  anonymous.on('error', () => {});
  try {
    await anonymous.connect();
    await assert.rejects(anonymous.call(...command), /NOAUTH/);
  } finally {
    anonymous.disconnect();
  }
}
