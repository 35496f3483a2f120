/**
 * The IPC request helper on a channel the test plays the other end of: answers find their request by
 * id, in any order; a request without an answer gives up with IPC_TIMEOUT and its late answer is
 * dropped; a channel that refuses the message, or is missing, fails the request at once with
 * IPC_CHANNEL_CLOSED; closing gives up every waiting request.
 */
import assert from 'node:assert/strict';
import type { Serializable } from 'node:child_process';
import { describe, test } from 'node:test';
import { createIpcRequests, sendOver, type IpcPort } from '../../src/platform/ipc.js';
import { IpcChannelError, IpcTimeoutError } from '../../src/errors.js';

/** A channel end that keeps what is sent over it, and fails sends with `refuse` set. */
function recordingPort(): IpcPort & { sent: { id: number }[]; refuse?: Error } {
  const port: IpcPort & { sent: { id: number }[]; refuse?: Error } = {
    sent: [],
    send(message: Serializable, callback: (error: Error | null) => void) {
      const refused = port.refuse;
      if (refused === undefined) port.sent.push(message as { id: number });
      setImmediate(() => callback(refused ?? null));
      return refused === undefined;
    },
  };
  return port;
}

const HOUR_MS = 3_600_000;

describe('IPC requests', () => {
  test('each answer settles the request with its id, whatever the order', async () => {
    const port = recordingPort();
    const requests = createIpcRequests<string>({ port, timeoutMs: HOUR_MS, what: 'a test' });
    const first = requests.request((id) => ({ id }));
    const second = requests.request((id) => ({ id }));
    const [a, b] = port.sent;
    assert.ok(a && b && a.id !== b.id, 'fresh ids');
    assert.equal(requests.pending, 2);
    assert.equal(requests.answer(b.id, { value: 'second' }), true);
    assert.equal(requests.answer(a.id, { value: 'first' }), true);
    assert.deepEqual(await Promise.all([first, second]), ['first', 'second']);
    assert.equal(requests.pending, 0);
    assert.equal(requests.answer(12345, { value: 'stray' }), false, 'an unknown id finds nothing');
  });

  test('an answer may be an error, which rejects the request', async () => {
    const port = recordingPort();
    const requests = createIpcRequests<string>({ port, timeoutMs: HOUR_MS, what: 'a test' });
    const asked = requests.request((id) => ({ id }));
    requests.answer(port.sent[0]?.id ?? -1, { error: new Error('the other end failed') });
    await assert.rejects(asked, /the other end failed/);
  });

  test('no answer in time: IPC_TIMEOUT naming the request, and the late answer is dropped', async () => {
    const port = recordingPort();
    const requests = createIpcRequests<string>({ port, timeoutMs: 20, what: 'the cluster metrics' });
    const error = await requests
      .request((id) => ({ id }))
      .then(
        () => assert.fail('answered'),
        (caught: unknown) => caught,
      );
    assert.ok(error instanceof IpcTimeoutError);
    assert.equal(error.code, 'IPC_TIMEOUT');
    assert.equal(error.requestId, port.sent[0]?.id);
    assert.match(error.message, /no answer to the cluster metrics #\d+ within 20 ms/);
    assert.equal(requests.answer(error.requestId, { value: 'late' }), false);
    assert.equal(requests.pending, 0);
  });

  test('a channel that refuses the message fails the request at once, not at its time-out', async () => {
    const port = recordingPort();
    port.refuse = Object.assign(new Error('Channel closed'), { code: 'ERR_IPC_CHANNEL_CLOSED' });
    const requests = createIpcRequests<string>({ port, timeoutMs: HOUR_MS, what: 'a test' });
    const error = await requests
      .request((id) => ({ id }))
      .then(
        () => assert.fail('answered'),
        (caught: unknown) => caught,
      );
    assert.ok(error instanceof IpcChannelError);
    assert.equal(error.code, 'IPC_CHANNEL_CLOSED');
    assert.equal((error.cause as Error).message, 'Channel closed');
    assert.equal(requests.pending, 0);
  });

  test('a process without a channel cannot send', async () => {
    await assert.rejects(
      sendOver({}, { id: 1 }),
      (error: unknown) => error instanceof IpcChannelError && /no IPC channel/.test(error.message),
    );
    const requests = createIpcRequests<string>({ port: {}, timeoutMs: HOUR_MS, what: 'a test' });
    await assert.rejects(
      requests.request((id) => ({ id })),
      IpcChannelError,
    );
  });

  test('close gives up every waiting request, and refuses later ones', async () => {
    const port = recordingPort();
    const requests = createIpcRequests<string>({ port, timeoutMs: HOUR_MS, what: 'a test' });
    const waiting = [requests.request((id) => ({ id })), requests.request((id) => ({ id }))];
    requests.close();
    for (const asked of waiting) await assert.rejects(asked, IpcChannelError);
    await assert.rejects(
      requests.request((id) => ({ id })),
      IpcChannelError,
    );
    assert.equal(port.sent.length, 2, 'nothing sent once closed');
  });
});
