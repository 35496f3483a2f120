/**
 * The setup most tests of the real service share: in the enclosing `describe`, a Redis and one
 * service on it, started before the first test and stopped after the last (the service first). The
 * caller chooses the Redis, so that a file that passes `startTestRedis` still imports it and runs in
 * both modes (test/cluster-pass.ts finds such files by that import), and the service's options, which
 * may depend on that Redis.
 *
 * A test that fails is followed by the service's lines written while it ran that say most about a
 * failure nobody can rerun (warnings and worse, and the processes' lifecycle), as a diagnostic of the
 * suite: a failure seen once in CI then tells what the service was doing.
 */
import { after, afterEach, before, beforeEach } from 'node:test';
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
  let from = 0;
  beforeEach(() => {
    from = service?.logs.length ?? 0;
  });
  afterEach((t) => {
    // `passed` is in Node 20's TestContext, not yet in its types.
    if (!('diagnostic' in t) || (t as { passed?: boolean }).passed !== false || service === undefined) return;
    const lines = service.telling(from);
    t.diagnostic(`the service's last warnings and lifecycle lines during "${t.name}": ${lines.length}`);
    for (const line of lines) t.diagnostic(JSON.stringify(line));
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
