/**
 * ioredis's clients, loaded with `require`, as queue/bullmq.ts loads BullMQ: imported from an ES
 * module, Node would first scan the package's source for its export names, about 40 ms of CPU at every
 * process start. BullMQ requires the same module, so both use one copy. The types are the package's own.
 */
import { createRequire } from 'node:module';
import type * as IORedis from 'ioredis';

const ioredis = createRequire(import.meta.url)('ioredis') as typeof IORedis;

export const { Cluster, Redis, SentinelConnector } = ioredis;
export type Cluster = IORedis.Cluster;
export type Redis = IORedis.Redis;
export type SentinelConnector = IORedis.SentinelConnector;
export type { ChainableCommander, ClusterOptions, Command, RedisOptions } from 'ioredis';
