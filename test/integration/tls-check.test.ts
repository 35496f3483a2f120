/**
 * Start-up's TLS check (src/redis/tls-trust.ts) against a real socket: a port nobody listens on gets
 * no verdict, so that a Redis that is merely away is waited for by the workers, as without TLS. The
 * verdicts on real TLS servers are in test/integration/redis-tls.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkTls } from '../../src/redis/tls-trust.js';
import { freePort } from '../support/ports.js';

test('a Redis that does not answer is not judged: the workers wait for it, as without TLS', async () => {
  const port = await freePort();
  assert.deepEqual(await checkTls({ kind: 'single', url: `rediss://127.0.0.1:${port}` }), {});
});
