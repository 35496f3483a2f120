/**
 * `GET /metrics` when the primary never answers the process's scrape: the route answers 503
 * METRICS_UNAVAILABLE in the JSON shape of every error, and logs it at warn. The route and the error
 * handler run in an Express app on a loopback port, the metrics client on a channel nobody answers
 * (the exchange itself is tested in test/unit/host-metrics.test.ts).
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { after, test } from 'node:test';
import express from 'express';
import { errorHandler } from '../../src/http/errors.js';
import { metricsRouter } from '../../src/http/routes/metrics.js';
import { createHostMetricsClient, type HostMetricsClient } from '../../src/metrics/host-metrics-client.js';
import { createProcessMetrics } from '../../src/metrics/process-metrics.js';
import { createScrape } from '../../src/metrics/scrape.js';
import { captureLogger } from '../support/capture-logger.js';
import { logged } from '../support/log-lines.js';
import { silentChannel } from '../support/silent-channel.js';

const WARN = 40;

let server: Server | undefined;
let client: HostMetricsClient | undefined;
after(async () => {
  client?.close();
  if (server) await new Promise((resolve) => server?.close(resolve));
});

test('a scrape the primary never answers: GET /metrics answers 503 METRICS_UNAVAILABLE and logs it at warn', async () => {
  const metrics = createProcessMetrics({
    workerId: 'unit-0',
    hostId: 'unit',
    knownJobNames: [],
    pool: { threads: 1, queueSize: 0 },
  });
  const { logger, lines } = captureLogger();
  client = createHostMetricsClient({ registry: metrics.registry, timeoutMs: 50, channel: silentChannel(), logger });
  const app = express();
  app.use(
    metricsRouter({
      scrape: createScrape({
        host: client,
        snapshot: () => Promise.resolve([]),
        queues: { forWorker: () => assert.fail('no worker to read') },
        groups: () => Promise.resolve([]),
        groupLabels: { top: 20, hostId: 'unit' },
      }),
    }),
  );
  app.use(errorHandler({ logger, bodyLimitBytes: 1024 }));
  server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const address = server.address();
  const response = await fetch(`http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/metrics`);
  assert.equal(response.status, 503);
  assert.deepEqual(await response.json(), {
    error: 'The cluster metrics are unavailable; try again shortly',
    code: 'METRICS_UNAVAILABLE',
  });
  assert.ok(
    logged(lines, 'http.unavailable', { level: WARN, code: 'METRICS_UNAVAILABLE', path: '/metrics' }),
    'the 503 is logged',
  );
});
