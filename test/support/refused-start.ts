/**
 * A service that must not start: it is started, waited for until it has exited with a fatal line, and
 * checked to have exited 1 without forking a process. What the fatal line says is each test's own.
 */
import assert from 'node:assert/strict';
import { logged } from './log-lines.js';
import { startService, type LogLine, type Service, type ServiceOptions } from './service.js';
import { waitFor } from './wait.js';

const FATAL = 60;

export interface Refusal {
  /** The first line at level fatal. */
  readonly fatal: LogLine;
  /** The stopped service, for what else its log and stderr must (not) hold. */
  readonly service: Service;
}

export async function refusedAtStart(
  options: Omit<ServiceOptions, 'workers' | 'waitUntilReady'>,
  { timeoutMs = 60_000 }: { timeoutMs?: number } = {},
): Promise<Refusal> {
  const service = await startService({ ...options, workers: 1, waitUntilReady: false });
  try {
    await waitFor(() => service.child.exitCode !== null && service.logs.some((line) => line.level === FATAL), {
      timeoutMs,
      what: `the service to exit with a fatal line; it logged ${JSON.stringify(service.logs)}`,
    });
  } finally {
    await service.stop('SIGKILL');
  }
  assert.equal(service.child.exitCode, 1);
  assert.ok(!logged(service.logs, 'process.forked'), 'no worker was forked');
  const fatal = service.logs.find((line) => line.level === FATAL);
  assert.ok(fatal);
  return { fatal, service };
}
