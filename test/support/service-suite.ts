/**
 * The setup most tests of the real service share: in the enclosing `describe`, a Redis and one
 * service on it, started before the first test and stopped after the last (the service first). The
 * caller chooses the Redis, so that a file that passes `startTestRedis` still imports it and runs in
 * both modes (test/cluster-pass.ts finds such files by that import), and the service's options, which
 * may depend on that Redis.
 */
import { after, before } from 'node:test';
import { startService, type Service, type ServiceOptions } from './service.js';

export interface ServiceSuite<R> {
  /** Read in a test or hook: before the suite's `before` has run there is nothing to read. */
  readonly redis: R;
  readonly service: Service;
}

export function serviceSuite<R extends { stop(): Promise<void> }>(
  startRedis: () => Promise<R>,
  serviceOptions: (redis: R) => ServiceOptions,
): ServiceSuite<R> {
  let redis: R | undefined;
  let service: Service | undefined;
  before(async () => {
    redis = await startRedis();
    service = await startService(serviceOptions(redis));
  });
  after(async () => {
    await service?.stop();
    await redis?.stop();
  });
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} of the suite was read before the suite started it`);
    return value;
  };
  return {
    get redis() {
      return started(redis, 'the Redis');
    },
    get service() {
      return started(service, 'the service');
    },
  };
}
