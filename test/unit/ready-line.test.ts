/**
 * The primary's ready line, from the settings: the full URLs of the docs, the queue dashboard and the
 * metrics, whether requests need the key and in which header, and never the key itself.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config/config.js';
import { readyLine } from '../../src/primary/ready-line.js';

const KEY = 'a-long-enough-secret-key-0123456789';

describe('the ready line', () => {
  test('without a key: full URLs of the docs, the dashboard and the metrics; no key needed', () => {
    const { fields } = readyLine(loadConfig({ PORT: '3100', HOST_ID: 'box', WORKERS: '3' }));
    assert.deepEqual(fields, {
      event: 'primary.ready',
      processes: 3,
      hostId: 'box',
      url: 'http://127.0.0.1:3100',
      docs: 'http://127.0.0.1:3100/docs',
      adminQueues: 'http://127.0.0.1:3100/admin/queues',
      metrics: 'http://127.0.0.1:3100/metrics',
      keyRequired: false,
      authorization: null,
      openPaths: [],
    });
  });

  test('with API_KEY: says requests need the Bearer header and which paths are open, never the key', () => {
    for (const metricsPublic of ['false', 'true']) {
      const { fields, message } = readyLine(loadConfig({ API_KEY: KEY, METRICS_PUBLIC: metricsPublic }));
      assert.equal(fields.keyRequired, true);
      assert.equal(fields.authorization, 'Authorization: Bearer $API_KEY');
      assert.deepEqual(
        fields.openPaths,
        metricsPublic === 'true' ? ['/livez', '/healthz', '/metrics'] : ['/livez', '/healthz'],
      );
      assert.ok(!JSON.stringify(fields).includes(KEY) && !message.includes(KEY), 'the key is not printed');
      assert.ok(message.includes(fields.authorization), message);
    }
  });

  test('ADMIN_UI=false: no dashboard URL; a wildcard host is shown as loopback, an IPv6 one bracketed', () => {
    assert.equal(readyLine(loadConfig({ ADMIN_UI: 'false' })).fields.adminQueues, null);
    assert.doesNotMatch(readyLine(loadConfig({ ADMIN_UI: 'false' })).message, /admin/);
    assert.equal(readyLine(loadConfig({ HOST: '0.0.0.0', PORT: '80' })).fields.url, 'http://127.0.0.1:80');
    assert.equal(readyLine(loadConfig({ HOST: '::' })).fields.docs, 'http://[::1]:3000/docs');
    assert.equal(readyLine(loadConfig({ HOST: '::1' })).fields.metrics, 'http://[::1]:3000/metrics');
    assert.equal(readyLine(loadConfig({ HOST: 'api.internal' })).fields.url, 'http://api.internal:3000');
  });
});
