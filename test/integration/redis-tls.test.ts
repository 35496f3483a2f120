/**
 * Redis over TLS (issue 12: passwords and TLS work with REDIS_CLUSTER_NODES as with REDIS_URL). The
 * real service against real redis-servers that speak TLS only, with certificates of a throwaway CA
 * that the service is told to trust through NODE_EXTRA_CA_CERTS, as a deployment on a private CA is:
 *
 * - one server, `REDIS_URL=rediss://…`;
 * - a 3-master cluster whose nodes also speak TLS to each other and ask for a password,
 *   `REDIS_CLUSTER_NODES=rediss://:<password>@…`;
 * - a cluster whose certificate names its host name only, as a managed Redis's does, reached by that
 *   name (`rediss://localhost:…`), its nodes announcing the name too.
 *
 * A certificate the service cannot verify (its CA not given, or a name it does not list) stops
 * start-up at once with the reason (src/redis/tls-trust.ts), instead of workers that wait for ever.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { probeRedis } from '../../src/local-redis/ping.js';
import { waitForIdle, waitForJobs, type Enqueued } from '../support/jobs.js';
import { parseMetrics } from '../support/prom-text.js';
import { skipUnlessClusterTools, startRedisCluster, type TestRedisCluster } from '../support/redis-cluster.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { assertRefusesWithoutPassword } from '../support/redis-nodes.js';
import { lineOf, logged } from '../support/log-lines.js';
import { refusedAtStart } from '../support/refused-start.js';
import { startService, type LogLine, type Service, type ServiceOptions } from '../support/service.js';
import { createTestCertificates, skipUnlessOpenssl, type TestCertificates } from '../support/tls-certs.js';
import { waitFor } from '../support/wait.js';

const WORKERS = 2;
const JOBS = 6;
const PASSWORD = 'tls s3cret';
const WARN = 40;

/**
 * What a service on any Redis must do: take tasks over HTTP, route them to both workers, run them to
 * completion, and answer /workers and /metrics with what happened.
 */
async function runsJobs(service: Service, jobName: string): Promise<void> {
  const jobs: Enqueued[] = [];
  for (let i = 0; i < JOBS; i += 1) {
    const response = await service.enqueue<Enqueued>({ jobName, data: { i, durationMs: 0 } });
    assert.equal(response.status, 202, response.text);
    jobs.push(response.body);
  }
  assert.deepEqual(new Set(jobs.map((job) => job.assignedWorker)), new Set(['test-0', 'test-1']));
  await waitForJobs(service, jobs);
  await waitForIdle(service);

  const { totals } = await service.workers();
  assert.equal(totals.alive, WORKERS);
  await waitFor(
    async () => {
      const scrape = await service.request('GET', '/metrics');
      assert.equal(scrape.status, 200, scrape.text);
      const completed = parseMetrics(scrape.text)
        .filter((sample) => sample.name === 'bullpen_jobs_completed_total')
        .reduce((sum, sample) => sum + sample.value, 0);
      return completed === JOBS;
    },
    { what: `/metrics to count ${JOBS} completed jobs` },
  );
}

/** Whatever answers on `port` speaks TLS only: a plain PING gets no PONG. */
async function refusesPlainText(port: number): Promise<void> {
  const probe = await probeRedis('127.0.0.1', port, 2_000);
  assert.notEqual(probe.state, 'pong', `port ${port} answered a plain PING`);
}

/**
 * Starts the service where it must not trust Redis's certificate, and returns its fatal line once it
 * has exited 1 without forking a worker. Why (the TLS error code) and what to do are in the line's
 * words only: src/primary/primary.ts logs the reason src/redis/tls-trust.ts gives, with no field for
 * them, so the tests read those in `msg`.
 */
async function untrustedAtStart(options: Omit<ServiceOptions, 'workers' | 'waitUntilReady'>): Promise<LogLine> {
  const { fatal } = await refusedAtStart(options, { timeoutMs: 30_000 });
  assert.equal(fatal.event, 'redis.tls-untrusted');
  return fatal;
}

describe('Redis over TLS', { skip: skipUnlessOpenssl() || skipUnlessClusterTools() }, () => {
  let certificates: TestCertificates;
  before(async () => {
    certificates = await createTestCertificates();
  });
  after(() => certificates?.remove());

  const trusting = (): Record<string, string> => ({ NODE_EXTRA_CA_CERTS: certificates.caFile });

  describe('one Redis: REDIS_URL=rediss://', () => {
    let redis: TestRedis;
    let service: Service;
    before(async () => {
      redis = await startRedis({ tls: certificates });
      service = await startService({ redisUrl: redis.url, workers: WORKERS, env: trusting() });
    });
    after(async () => {
      await service?.stop();
      await redis?.stop();
    });

    test('the server speaks TLS only', async () => {
      assert.match(redis.url, /^rediss:\/\//);
      await refusesPlainText(redis.port);
    });

    test('tasks are routed to both workers and complete; /workers and /metrics answer', async () => {
      await runsJobs(service, 'over-tls');
      const keys = await redis.client.keys(`${service.prefix}:tasks.*`);
      assert.ok(keys.length > 0, 'the queues are in the TLS server');
    });

    test('without the CA, start-up stops at once and says why', async () => {
      const fatal = await untrustedAtStart({ redisUrl: redis.url });
      assert.equal(fatal.redis, redis.url, 'it names the Redis');
      assert.equal(fatal.code, 'SELF_SIGNED_CERT_IN_CHAIN', 'why');
      assert.equal(fatal.endpoint, `127.0.0.1:${redis.port}`, 'which server');
      assert.equal(fatal.fix, 'NODE_EXTRA_CA_CERTS', 'and where to give the CA');
    });
  });

  test('a Redis without TLS given as rediss:// is named in a warning, and then waited for as one that is down', async () => {
    const plain = await startRedis();
    const url = `rediss://127.0.0.1:${plain.port}`;
    const service = await startService({ redisUrl: url, workers: 1, waitUntilReady: false, env: trusting() });
    try {
      const warning = await waitFor(() => lineOf(service.logs, 'redis.tls-silent', { level: WARN }), {
        timeoutMs: 30_000,
        what: `a warning about the handshake; the service logged ${JSON.stringify(service.logs)}`,
      });
      assert.equal(warning.redis, url, 'it names the Redis');
      assert.equal(warning.endpoint, `127.0.0.1:${plain.port}`, 'which server');
      assert.equal(warning.fix, 'redis://', 'what to do about it');
      await waitFor(() => logged(service.logs, 'process.forked'), {
        what: 'the workers to be forked all the same',
      });
      assert.equal(service.child.exitCode, null, 'start-up goes on');
    } finally {
      await service.stop('SIGKILL');
      await plain.stop();
    }
  });

  describe('a Redis Cluster with a password: REDIS_CLUSTER_NODES=rediss://:<password>@…', () => {
    let cluster: TestRedisCluster;
    let seeds: string;
    let service: Service;
    let client: Cluster;
    before(async () => {
      cluster = await startRedisCluster({ masters: 3, tls: certificates });
      // Set on each node: the cluster bus needs no password, and there are no replicas.
      for (const { host, port } of cluster.nodes) {
        const node = new Redis({ host, port, tls: { ca: certificates.ca }, lazyConnect: true });
        await node.connect();
        await node.config('SET', 'requirepass', PASSWORD);
        node.disconnect();
      }
      const secret = encodeURIComponent(PASSWORD);
      seeds = cluster.nodes.map(({ host, port }) => `rediss://:${secret}@${host}:${port}`).join(',');
      service = await startService({ redisUrl: '', clusterNodes: seeds, workers: WORKERS, env: trusting() });
      client = new Cluster(
        cluster.nodes.map(({ host, port }) => ({ host, port })),
        { redisOptions: { tls: { ca: certificates.ca }, password: PASSWORD } },
      );
      await waitFor(() => client.status === 'ready', { what: 'the test client on the TLS cluster' });
    });
    after(async () => {
      client?.disconnect();
      await service?.stop();
      // The harness's own client has no password: it is closed without a goodbye.
      cluster?.client.disconnect();
      await cluster?.stop();
    });

    test('every node speaks TLS only and asks for the password', async () => {
      for (const { host, port } of cluster.nodes) {
        await refusesPlainText(port);
        await assertRefusesWithoutPassword({ host, port }, { ca: certificates.ca });
      }
    });

    test("tasks are routed to both workers and complete; the workers' queues are on two masters", async () => {
      await runsJobs(service, 'over-tls-cluster');
      const holding = await Promise.all(
        client.nodes('master').map(async (master) => (await master.keys(`${service.prefix}:tasks.*`)).length > 0),
      );
      assert.equal(holding.length, 3);
      assert.ok(holding.filter(Boolean).length >= 2, `queue keys on ${holding.filter(Boolean).length} master(s)`);
    });

    test('without the CA, start-up stops at once and says why', async () => {
      const fatal = await untrustedAtStart({ redisUrl: '', clusterNodes: seeds });
      assert.match(
        String(fatal.redis),
        new RegExp(`^cluster 127\\.0\\.0\\.1:${cluster.nodes[0]?.port}`),
        'it names the cluster',
      );
      assert.equal(fatal.code, 'SELF_SIGNED_CERT_IN_CHAIN', 'why');
      assert.doesNotMatch(JSON.stringify(fatal), /s3cret/, 'the password is not logged');
    });
  });

  describe('a Redis Cluster whose certificate names its host only, reached by that name', () => {
    let named: TestCertificates;
    let cluster: TestRedisCluster;
    let service: Service;
    before(async () => {
      named = await createTestCertificates({ names: ['DNS:localhost'] });
      cluster = await startRedisCluster({ masters: 3, tls: named, announceHostname: 'localhost' });
      service = await startService({
        redisUrl: '',
        clusterNodes: cluster.nodes.map(({ port }) => `rediss://localhost:${port}`).join(','),
        workers: WORKERS,
        env: { NODE_EXTRA_CA_CERTS: named.caFile },
      });
    });
    after(async () => {
      await service?.stop();
      await cluster?.stop();
      named?.remove();
    });

    test('tasks are routed to both workers and complete', async () => {
      await runsJobs(service, 'over-tls-by-name');
    });

    test('reached by an address the certificate does not list, start-up stops at once and says why', async () => {
      const fatal = await untrustedAtStart({
        redisUrl: '',
        clusterNodes: cluster.nodes.map(({ port }) => `rediss://127.0.0.1:${port}`).join(','),
        env: { NODE_EXTRA_CA_CERTS: named.caFile },
      });
      assert.equal(fatal.code, 'ERR_TLS_CERT_ALTNAME_INVALID', 'why');
      assert.match(String(fatal.endpoint), /^127\.0\.0\.1:\d+$/, 'reached by an address');
      // Node's own words for the mismatch, passed on as they are.
      assert.match(String(fatal.detail), /127\.0\.0\.1 is not in the cert's list/, 'the name it reached is not listed');
    });
  });
});
