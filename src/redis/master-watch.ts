/**
 * Which master a connection through Redis Sentinel reaches now, and when that changes: after a
 * promotion, the connection comes back `ready` at another address. Read from the socket of each
 * `ready`, which ioredis opened to the address the sentinels named; what /healthz and the metric of
 * master changes report.
 */
import type { Redis } from './ioredis.js';

export interface MasterWatch {
  /** `host:port` of the master the connection last reached; undefined before it first did. */
  current(): string | undefined;
}

export function watchMaster(redis: Redis, onChange: (from: string, to: string) => void): MasterWatch {
  let current: string | undefined;
  const onReady = () => {
    const { remoteAddress, remotePort } = redis.stream;
    if (remoteAddress === undefined || remotePort === undefined) return;
    const address = `${remoteAddress}:${remotePort}`;
    const before = current;
    current = address;
    if (before !== undefined && before !== address) onChange(before, address);
  };
  redis.on('ready', onReady);
  if (redis.status === 'ready') onReady();
  return { current: () => current };
}
