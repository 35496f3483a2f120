/**
 * The master that Redis Sentinel names, asked once by the primary before it forks a process. A wrong
 * master name, a list in which no sentinel answers, or a password the sentinels or the master refuse,
 * is a mistake of configuration rather than an outage: every process would wait for ever on a master
 * no sentinel will name, or that will not let it in. So start-up asks, for a bounded time, and stops
 * saying which it was (primary/preflight.ts). Each sentinel is asked in turn, as ioredis does; the
 * first that names the master settles it, and the master is then asked to let the credentials in.
 */
import { Redis, type RedisOptions } from './ioredis.js';
import type { SentinelTarget } from './target.js';

/** Between two rounds over every sentinel while none answers. */
const ROUND_INTERVAL_MS = 500;

/** Redis's refusals of a client's credentials (none given, or wrong): no retry cures them. */
const CREDENTIALS_REFUSED = /^(NOAUTH|WRONGPASS)\b/;

export type SentinelVerdict =
  | { readonly kind: 'master'; readonly address: string; readonly sentinel: string }
  /** A sentinel answered, and watches no master by that name. */
  | { readonly kind: 'unknown-master'; readonly sentinel: string }
  /** No sentinel answered within the time; the last reason of each. */
  | { readonly kind: 'unreachable'; readonly reasons: Readonly<Record<string, string>> }
  /** The sentinels (none named the master), or the master they named, refused the credentials given for them. */
  | {
      readonly kind: 'refused';
      readonly role: 'sentinel' | 'master';
      readonly endpoint: string;
      readonly reason: string;
    };

export async function findSentinelMaster(target: SentinelTarget, timeoutMs: number): Promise<SentinelVerdict> {
  const deadline = performance.now() + timeoutMs;
  const reasons: Record<string, string> = {};
  for (;;) {
    let refused: SentinelVerdict | undefined;
    for (const { host, port } of target.sentinels) {
      const sentinel = `${host}:${port}`;
      const left = Math.max(deadline - performance.now(), 100);
      try {
        const reply = await askSentinel(target, host, port, Math.min(left, 2_000));
        if (reply === null) return { kind: 'unknown-master', sentinel };
        return await checkMaster(target, reply, sentinel, Math.min(left, 2_000));
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        reasons[sentinel] = reason;
        if (CREDENTIALS_REFUSED.test(reason))
          refused ??= { kind: 'refused', role: 'sentinel', endpoint: sentinel, reason };
      }
    }
    // Every sentinel shares the credentials: a refusal, with none naming the master, is one they all would make.
    if (refused !== undefined) return refused;
    if (performance.now() + ROUND_INTERVAL_MS >= deadline) return { kind: 'unreachable', reasons };
    await new Promise((resolve) => setTimeout(resolve, ROUND_INTERVAL_MS));
  }
}

/** `host:port` of the master, or null when the sentinel knows no master by that name. */
async function askSentinel(
  target: SentinelTarget,
  host: string,
  port: number,
  timeoutMs: number,
): Promise<string | null> {
  const reply = await withClient(
    {
      host,
      port,
      ...(target.sentinelUsername === undefined ? {} : { username: target.sentinelUsername }),
      ...(target.sentinelPassword === undefined ? {} : { password: target.sentinelPassword }),
      ...(target.tls ? { tls: {} } : {}),
    },
    timeoutMs,
    (client) => client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', target.master),
  );
  if (!Array.isArray(reply) || reply.length < 2) return null;
  return `${String(reply[0])}:${String(reply[1])}`;
}

/**
 * The master verdict, unless the master refuses REDIS_USERNAME/REDIS_PASSWORD. A master that does not
 * answer now (a failover under way) is not judged: the processes wait for it, as for any outage.
 */
async function checkMaster(
  target: SentinelTarget,
  address: string,
  sentinel: string,
  timeoutMs: number,
): Promise<SentinelVerdict> {
  const colon = address.lastIndexOf(':');
  try {
    await withClient(
      {
        host: address.slice(0, colon),
        port: Number(address.slice(colon + 1)),
        ...(target.username === undefined ? {} : { username: target.username }),
        ...(target.password === undefined ? {} : { password: target.password }),
        ...(target.tls ? { tls: {} } : {}),
      },
      timeoutMs,
      (client) => client.ping(),
    );
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (CREDENTIALS_REFUSED.test(reason)) return { kind: 'refused', role: 'master', endpoint: address, reason };
  }
  return { kind: 'master', address, sentinel };
}

/** Connects once, without retries, runs `use`, and disconnects; rejects with Redis's own reason. */
async function withClient<T>(options: RedisOptions, timeoutMs: number, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({
    ...options,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // A refused AUTH (or ready check) closes the connection, and `connect` then rejects with only
  // "Connection is closed.": the error reported first says why.
  let reported: Error | undefined;
  client.on('error', (error: Error) => (reported ??= error));
  try {
    await client.connect().catch((error: unknown) => {
      throw reported ?? error;
    });
    return await use(client);
  } finally {
    client.disconnect();
  }
}
