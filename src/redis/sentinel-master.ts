/**
 * The master that Redis Sentinel names, asked once by the primary before it forks a process. A wrong
 * master name, or a list in which no sentinel answers, is a mistake of configuration rather than an
 * outage: every process would wait for ever on a master no sentinel will name. So start-up asks, for
 * a bounded time, and stops saying which it was (primary/preflight.ts). Each sentinel is asked in turn,
 * as ioredis does; the first that names the master settles it.
 */
import { Redis } from './ioredis.js';
import type { SentinelTarget } from './target.js';

/** Between two rounds over every sentinel while none answers. */
const ROUND_INTERVAL_MS = 500;

export type SentinelVerdict =
  | { readonly kind: 'master'; readonly address: string; readonly sentinel: string }
  /** A sentinel answered, and watches no master by that name. */
  | { readonly kind: 'unknown-master'; readonly sentinel: string }
  /** No sentinel answered within the time; the last reason of each. */
  | { readonly kind: 'unreachable'; readonly reasons: Readonly<Record<string, string>> };

export async function findSentinelMaster(target: SentinelTarget, timeoutMs: number): Promise<SentinelVerdict> {
  const deadline = performance.now() + timeoutMs;
  const reasons: Record<string, string> = {};
  for (;;) {
    for (const { host, port } of target.sentinels) {
      const sentinel = `${host}:${port}`;
      const left = Math.max(deadline - performance.now(), 100);
      try {
        const reply = await askSentinel(target, host, port, Math.min(left, 2_000));
        if (reply === null) return { kind: 'unknown-master', sentinel };
        return { kind: 'master', address: reply, sentinel };
      } catch (error) {
        reasons[sentinel] = error instanceof Error ? error.message : String(error);
      }
    }
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
  const client = new Redis({
    host,
    port,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    ...(target.sentinelUsername === undefined ? {} : { username: target.sentinelUsername }),
    ...(target.sentinelPassword === undefined ? {} : { password: target.sentinelPassword }),
    ...(target.tls ? { tls: {} } : {}),
  });
  client.on('error', () => {}); // the failed command says why
  try {
    await client.connect();
    const reply = await client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', target.master);
    if (!Array.isArray(reply) || reply.length < 2) return null;
    return `${String(reply[0])}:${String(reply[1])}`;
  } finally {
    client.disconnect();
  }
}
