/**
 * Which endpoints start-up checks the TLS certificate of (src/redis/tls-trust.ts): exactly those the
 * service will speak TLS to, so that a plain Redis is never held up by the check. The check itself
 * meets real sockets in test/integration/tls-check.test.ts (a closed port is no verdict) and real TLS
 * servers in test/integration/redis-tls.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusterNodesSchema } from '../../src/redis/target.js';
import { tlsEndpoints } from '../../src/redis/tls-trust.js';

test('a rediss:// URL is one endpoint: localhost and port 6379 unless given, an IPv6 host without brackets', () => {
  assert.deepEqual(tlsEndpoints({ kind: 'single', url: 'rediss://:pw@redis.example:6380/2' }), [
    { host: 'redis.example', port: 6380 },
  ]);
  assert.deepEqual(tlsEndpoints({ kind: 'single', url: 'rediss://redis.example' }), [
    { host: 'redis.example', port: 6379 },
  ]);
  assert.deepEqual(tlsEndpoints({ kind: 'single', url: 'rediss://[::1]:7000' }), [{ host: '::1', port: 7000 }]);
  assert.deepEqual(tlsEndpoints({ kind: 'single', url: 'rediss://' }), [{ host: 'localhost', port: 6379 }]);
});

test('a redis:// URL, or one that does not parse, has none', () => {
  assert.deepEqual(tlsEndpoints({ kind: 'single', url: 'redis://127.0.0.1:6379' }), []);
  assert.deepEqual(tlsEndpoints({ kind: 'single', url: 'rediss://a b' }), []);
});

test("a TLS cluster's endpoints are its seeds; a plain cluster has none", () => {
  const tls = clusterNodesSchema.parse('rediss://:pw@a.example:7000,b.example:7001');
  assert.deepEqual(tlsEndpoints(tls), [
    { host: 'a.example', port: 7000 },
    { host: 'b.example', port: 7001 },
  ]);
  assert.deepEqual(tlsEndpoints(clusterNodesSchema.parse('a.example:7000,b.example:7001')), []);
});
