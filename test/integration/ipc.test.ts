/**
 * The IPC request helper over a real channel, to a forked child: answers arrive by id, and a channel
 * that has closed fails a request at once through Node's send callback, instead of leaving it to its
 * time-out.
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { createIpcRequests } from '../../src/platform/ipc.js';
import { IpcChannelError } from '../../src/errors.js';

const FIXTURE = new URL('../fixtures/ipc-echo.js', import.meta.url);
const HOUR_MS = 3_600_000;

describe('IPC requests to a forked child', () => {
  let child: ChildProcess;
  before(() => {
    child = fork(FIXTURE, { stdio: 'ignore' });
  });
  after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill();
  });

  test('answers come back by id', async () => {
    const requests = createIpcRequests<string>({ port: child, timeoutMs: HOUR_MS, what: 'an echo' });
    child.on('message', (message: { id: number; echo: string }) =>
      requests.answer(message.id, { value: message.echo }),
    );
    const answers = await Promise.all(['one', 'two', 'three'].map((ask) => requests.request((id) => ({ id, ask }))));
    assert.deepEqual(answers, ['ONE', 'TWO', 'THREE']);
  });

  test('once the channel has closed, a request fails at once with IPC_CHANNEL_CLOSED', async () => {
    const requests = createIpcRequests<string>({ port: child, timeoutMs: HOUR_MS, what: 'an echo' });
    const exited = once(child, 'exit');
    child.kill();
    await exited;
    const error = await requests
      .request((id) => ({ id, ask: 'anyone?' }))
      .then(
        () => assert.fail('answered'),
        (caught: unknown) => caught,
      );
    assert.ok(error instanceof IpcChannelError);
    assert.equal(error.code, 'IPC_CHANNEL_CLOSED');
    assert.equal(requests.pending, 0);
  });
});
