/**
 * The harness's ports: chosen where no outgoing connection can take them before a server binds them,
 * and a start tried again only when its port was taken.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { freePort, startOnFreePorts } from '../support/ports.js';

test('a free port lies below the range of outgoing connections, and can be listened on', async () => {
  const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
  for (const port of ports) assert.ok(port >= 10_000 && port < low, `${port} is below ${low}`);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(ports[0], '127.0.0.1', resolve));
  await new Promise((resolve) => server.close(resolve));
});

test('a start is tried again only while its port was taken, and at most the attempts given', async () => {
  const taken = new Error('taken');
  const tries: number[] = [];
  const started = await startOnFreePorts(
    3,
    (attempt) => {
      tries.push(attempt);
      return attempt < 3 ? Promise.reject(taken) : Promise.resolve('up');
    },
    (error) => error === taken,
  );
  assert.equal(started, 'up');
  assert.deepEqual(tries, [1, 2, 3]);
  await assert.rejects(
    startOnFreePorts(
      2,
      () => Promise.reject(taken),
      (error) => error === taken,
    ),
    /taken/,
  );
  let other = 0;
  await assert.rejects(
    startOnFreePorts(
      3,
      () => {
        other += 1;
        return Promise.reject(new Error('refused'));
      },
      (error) => error === taken,
    ),
    /refused/,
  );
  assert.equal(other, 1, 'any other failure is not tried again');
});
