import { availableParallelism } from 'node:os';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/config.js';
import { CONFIG_VARIABLES } from '../../src/config/env-schema.js';
import { exposureOf, isLoopbackHost } from '../../src/config/exposure.js';
import { assertRejects } from '../support/config-errors.js';

describe('loadConfig defaults', () => {
  test('an empty environment gives the documented defaults', () => {
    const config = loadConfig({});
    assert.equal(config.port, 3000);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.redisUrl, undefined);
    assert.equal(config.processes, 4);
    assert.equal(config.concurrency, 8);
    assert.equal(config.taskDurationMs, 12_000);
    assert.equal(config.maxTaskDurationMs, 600_000);
    assert.equal(config.prefix, 'bullpen');
    assert.equal(config.shutdownTimeoutMs, 30_000);
    assert.equal(config.heartbeatIntervalMs, 1_000);
    assert.equal(config.workerTtlMs, 5_000);
    assert.equal(config.reconcileIntervalMs, 5_000);
    assert.equal(config.reservationGraceMs, 5_000);
    assert.equal(config.lockDurationMs, 30_000);
    assert.equal(config.jobAttempts, 3);
    assert.equal(config.jobBackoffMs, 1_000);
    assert.deepEqual(config.retention, {
      completed: { ageSeconds: 3_600, count: 1_000 },
      failed: { ageSeconds: 7 * 24 * 3_600, count: 10_000 },
    });
    assert.equal(config.bodyLimitBytes, 100 * 1024);
    assert.equal(config.redisDataDir, '.data/redis');
    assert.equal(config.logLevel, 'info');
    assert.equal(config.logPretty, undefined);
    assert.equal(config.workerIndex, undefined);
  });

  test('hostId defaults to a key-safe name derived from the host name', () => {
    const { hostId } = loadConfig({});
    assert.match(hostId, /^[A-Za-z0-9_.-]{1,64}$/);
    // Deterministic: the same environment gives the same id.
    assert.equal(loadConfig({}).hostId, hostId);
  });

  test('empty strings are treated as unset', () => {
    const config = loadConfig({ PORT: '', WORKERS: '', QUEUE_PREFIX: '', HOST_ID: '', REDIS_URL: '', LOG_PRETTY: '' });
    assert.equal(config.port, 3000);
    assert.equal(config.processes, 4);
    assert.equal(config.prefix, 'bullpen');
    assert.equal(config.redisUrl, undefined);
    assert.equal(config.logPretty, undefined);
    assert.equal(config.hostId, loadConfig({}).hostId);
  });

  test('undefined values are treated as unset', () => {
    assert.equal(loadConfig({ WORKERS: undefined }).processes, 4);
  });

  test('unknown variables are ignored', () => {
    assert.equal(loadConfig({ PATH: '/usr/bin', SOMETHING_ELSE: 'x' }).processes, 4);
  });
});

describe('loadConfig values', () => {
  test('numeric strings are coerced to numbers', () => {
    const config = loadConfig({
      PORT: '8080',
      WORKERS: '2',
      WORKER_CONCURRENCY: '16',
      TASK_DURATION_MS: '500',
      MAX_TASK_DURATION_MS: '1000',
      HEARTBEAT_INTERVAL_MS: '200',
      WORKER_TTL_MS: '1000',
      JOB_ATTEMPTS: '5',
      JOB_BACKOFF_MS: '250',
      COMPLETED_RETENTION_SECONDS: '60',
      COMPLETED_RETENTION_COUNT: '10',
      FAILED_RETENTION_SECONDS: '120',
      FAILED_RETENTION_COUNT: '20',
      BULLPEN_WORKER_INDEX: '3',
    });
    assert.equal(config.port, 8080);
    assert.equal(config.processes, 2);
    assert.equal(config.concurrency, 16);
    assert.equal(config.taskDurationMs, 500);
    assert.equal(config.maxTaskDurationMs, 1000);
    assert.equal(config.heartbeatIntervalMs, 200);
    assert.equal(config.workerTtlMs, 1000);
    assert.equal(config.jobAttempts, 5);
    assert.equal(config.jobBackoffMs, 250);
    assert.deepEqual(config.retention, {
      completed: { ageSeconds: 60, count: 10 },
      failed: { ageSeconds: 120, count: 20 },
    });
    assert.equal(config.workerIndex, 3);
    assert.equal(typeof config.port, 'number');
  });

  test('string settings are passed through', () => {
    const config = loadConfig({
      HOST: '0.0.0.0',
      REDIS_URL: 'rediss://user:pw@redis.example:6380/2',
      QUEUE_PREFIX: '{bullpen}',
      HOST_ID: 'node_1.a-b',
      REDIS_DATA_DIR: '/var/lib/bullpen',
      LOG_LEVEL: 'debug',
    });
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.redisUrl, 'rediss://user:pw@redis.example:6380/2');
    assert.equal(config.prefix, '{bullpen}');
    assert.equal(config.hostId, 'node_1.a-b');
    assert.equal(config.redisDataDir, '/var/lib/bullpen');
    assert.equal(config.logLevel, 'debug');
  });

  test('redis:// URLs are accepted', () => {
    assert.equal(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).redisUrl, 'redis://127.0.0.1:6379');
  });

  test('LOG_PRETTY accepts true/false/1/0', () => {
    assert.equal(loadConfig({ LOG_PRETTY: 'true' }).logPretty, true);
    assert.equal(loadConfig({ LOG_PRETTY: '1' }).logPretty, true);
    assert.equal(loadConfig({ LOG_PRETTY: 'false' }).logPretty, false);
    assert.equal(loadConfig({ LOG_PRETTY: '0' }).logPretty, false);
  });

  test('bounds are inclusive', () => {
    assert.equal(loadConfig({ PORT: '0' }).port, 0);
    assert.equal(loadConfig({ PORT: '65535' }).port, 65535);
    assert.equal(loadConfig({ WORKERS: '1' }).processes, 1);
    assert.equal(loadConfig({ WORKERS: '256' }).processes, 256);
    assert.equal(loadConfig({ TASK_DURATION_MS: '0' }).taskDurationMs, 0);
  });

  test('WORKERS=auto sizes the pool from the CPUs the process may use, within 1 to 256; unset stays 4', () => {
    const cpus = (count: number) => ({ availableParallelism: () => count });
    assert.equal(loadConfig({ WORKERS: 'auto' }).processes, availableParallelism());
    assert.equal(loadConfig({ WORKERS: 'auto' }, cpus(6)).processes, 6);
    assert.equal(loadConfig({ WORKERS: ' auto ' }, cpus(6)).processes, 6, 'trimmed, as numbers are');
    assert.equal(loadConfig({ WORKERS: 'auto' }, cpus(1)).processes, 1);
    assert.equal(loadConfig({ WORKERS: 'auto' }, cpus(512)).processes, 256, 'no more ids than one host can have');
    assert.equal(loadConfig({}, cpus(6)).processes, 4, 'the default does not follow the CPUs');
    assert.equal(loadConfig({ WORKERS: '3' }, cpus(6)).processes, 3);
    const error = assertRejects({ WORKERS: 'AUTO!' }, 'WORKERS');
    assert.match(error.message, /WORKERS: must be a whole number from 1 to 256, or auto/);
  });

  test('the result is frozen, including the retention objects', () => {
    const config = loadConfig({});
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.retention));
    assert.ok(Object.isFrozen(config.retention.completed));
    assert.ok(Object.isFrozen(config.retention.failed));
    assert.throws(() => {
      (config as { processes: number }).processes = 99;
    }, TypeError);
    assert.equal(config.processes, 4);
  });

  test('the input environment is not modified', () => {
    const env = { WORKERS: '2', PORT: '' };
    loadConfig(env);
    assert.deepEqual(env, { WORKERS: '2', PORT: '' });
  });
});

describe('loadConfig errors', () => {
  const invalid: [string, string][] = [
    ['WORKERS', '0'],
    ['WORKERS', 'abc'],
    ['WORKERS', '2.5'],
    ['WORKERS', '257'],
    ['WORKERS', '-1'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['WORKER_CONCURRENCY', '0'],
    ['TASK_DURATION_MS', '-5'],
    ['REDIS_URL', 'http://x'],
    ['REDIS_URL', 'localhost:6379'],
    ['QUEUE_PREFIX', 'a:b'],
    ['QUEUE_PREFIX', 'has space'],
    ['QUEUE_PREFIX', 'x'.repeat(65)],
    ['HOST_ID', 'has space'],
    ['HOST_ID', 'a:b'],
    ['HOST_ID', '{tag}'],
    ['HOST_ID', 'h'.repeat(65)],
    ['LOG_PRETTY', 'maybe'],
    ['LOG_PRETTY', 'yes'],
    ['LOG_LEVEL', 'verbose'],
    ['HEARTBEAT_INTERVAL_MS', '10'],
    ['LOCK_DURATION_MS', '999'],
    ['JOB_ATTEMPTS', '0'],
    ['BODY_LIMIT_BYTES', '63'],
    ['BULLPEN_WORKER_INDEX', '256'],
  ];
  for (const [name, value] of invalid) {
    test(`${name}=${value.length > 20 ? `${value.slice(0, 10)}...` : value} is rejected naming ${name}`, () => {
      const error = assertRejects({ [name]: value }, name);
      assert.match(error.message, /^Invalid configuration:/);
    });
  }

  test('a message names only the offending variable', () => {
    const error = assertRejects({ WORKERS: '0', PORT: '8080' }, 'WORKERS');
    assert.doesNotMatch(error.message, /PORT/);
  });

  test('WORKER_TTL_MS must exceed HEARTBEAT_INTERVAL_MS', () => {
    assertRejects({ HEARTBEAT_INTERVAL_MS: '1000', WORKER_TTL_MS: '1000' }, 'WORKER_TTL_MS');
    assertRejects({ HEARTBEAT_INTERVAL_MS: '2000', WORKER_TTL_MS: '1000' }, 'WORKER_TTL_MS');
    // Against the default heartbeat of 1000 ms.
    assertRejects({ WORKER_TTL_MS: '500' }, 'WORKER_TTL_MS');
    assert.equal(loadConfig({ HEARTBEAT_INTERVAL_MS: '1000', WORKER_TTL_MS: '1001' }).workerTtlMs, 1001);
  });

  test('TASK_DURATION_MS may not exceed MAX_TASK_DURATION_MS', () => {
    assertRejects({ TASK_DURATION_MS: '2000', MAX_TASK_DURATION_MS: '1000' }, 'TASK_DURATION_MS');
    // The default task duration (12 s) against a smaller maximum.
    assertRejects({ MAX_TASK_DURATION_MS: '5000' }, 'TASK_DURATION_MS');
    const equal = loadConfig({ TASK_DURATION_MS: '1000', MAX_TASK_DURATION_MS: '1000' });
    assert.equal(equal.taskDurationMs, 1000);
    assert.equal(equal.maxTaskDurationMs, 1000);
  });

  test('WARM_THREADS defaults to WORKER_CONCURRENCY and may not exceed it', () => {
    assert.equal(loadConfig({}).warmThreads, 8);
    assert.equal(loadConfig({ WORKER_CONCURRENCY: '3' }).warmThreads, 3);
    assert.equal(loadConfig({ WARM_THREADS: '0' }).warmThreads, 0);
    assert.equal(loadConfig({ WARM_THREADS: '8' }).warmThreads, 8);
    assertRejects({ WARM_THREADS: '9' }, 'WARM_THREADS');
    assertRejects({ WARM_THREADS: '4', WORKER_CONCURRENCY: '2' }, 'WARM_THREADS');
  });

  test('several errors are reported at once', () => {
    assertRejects(
      { WORKERS: '0', PORT: '70000', QUEUE_PREFIX: 'a:b', LOG_PRETTY: 'maybe' },
      'WORKERS',
      'PORT',
      'QUEUE_PREFIX',
      'LOG_PRETTY',
    );
  });

  test('both cross-field errors are reported together', () => {
    assertRejects(
      { HEARTBEAT_INTERVAL_MS: '1000', WORKER_TTL_MS: '500', TASK_DURATION_MS: '2000', MAX_TASK_DURATION_MS: '1000' },
      'WORKER_TTL_MS',
      'TASK_DURATION_MS',
    );
  });

  test('each error is on its own line', () => {
    const error = assertRejects({ WORKERS: '0', PORT: '70000' }, 'WORKERS', 'PORT');
    const lines = error.message.split('\n');
    assert.equal(lines[0], 'Invalid configuration:');
    assert.equal(lines.length, 3);
  });
});

describe('CONFIG_VARIABLES', () => {
  test('lists the understood variable names', () => {
    for (const name of [
      'PORT',
      'HOST',
      'REDIS_URL',
      'WORKERS',
      'WORKER_CONCURRENCY',
      'TASK_DURATION_MS',
      'MAX_TASK_DURATION_MS',
      'QUEUE_PREFIX',
      'HOST_ID',
      'HEARTBEAT_INTERVAL_MS',
      'WORKER_TTL_MS',
      'JOB_ATTEMPTS',
      'COMPLETED_RETENTION_SECONDS',
      'FAILED_RETENTION_COUNT',
      'LOG_LEVEL',
      'LOG_PRETTY',
      'BULLPEN_WORKER_INDEX',
    ]) {
      assert.ok(CONFIG_VARIABLES.includes(name), `${name} should be listed`);
    }
    assert.equal(new Set(CONFIG_VARIABLES).size, CONFIG_VARIABLES.length);
    for (const name of CONFIG_VARIABLES) assert.match(name, /^[A-Z][A-Z0-9_]*$/);
  });

  test('is frozen', () => {
    assert.ok(Object.isFrozen(CONFIG_VARIABLES));
  });

  test('every listed variable is actually read: an invalid value for it is rejected', () => {
    for (const name of CONFIG_VARIABLES) {
      // Not a number, a redis URL, an enum member or a key-safe name, so every typed setting refuses it.
      // HOST, REDIS_DATA_DIR and HANDLERS_DIR accept any non-empty string: checked separately below.
      const anyString = ['HOST', 'REDIS_DATA_DIR', 'HANDLERS_DIR', 'PATH'];
      if (anyString.includes(name)) continue;
      assertRejects({ [name]: 'not valid\u0000' }, name);
    }
    assert.equal(loadConfig({ HOST: 'example.internal' }).host, 'example.internal');
    assert.equal(loadConfig({ REDIS_DATA_DIR: 'tmp/r' }).redisDataDir, 'tmp/r');
    assert.equal(loadConfig({ HANDLERS_DIR: 'dist/h' }).handlersDir, 'dist/h');
    const traced = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SERVICE_NAME: 'jobs' };
    assert.equal(loadConfig(traced).tracing?.serviceName, 'jobs');
  });
});

describe('reliability and security settings', () => {
  test('defaults', () => {
    const config = loadConfig({});
    assert.equal(config.jobTimeoutMs, 900_000);
    assert.equal(config.threadMemoryLimitMb, 512);
    assert.equal(config.maxBacklog, 100_000);
    assert.equal(config.commandTimeoutMs, 500);
    assert.equal(config.apiKey, undefined);
    assert.equal(config.metricsPublic, false);
    assert.equal(config.handlersDir, undefined);
  });

  test('JOB_TIMEOUT_MS must exceed MAX_TASK_DURATION_MS', () => {
    assertRejects({ JOB_TIMEOUT_MS: '600000' }, 'JOB_TIMEOUT_MS');
    assert.equal(
      loadConfig({ JOB_TIMEOUT_MS: '1000', MAX_TASK_DURATION_MS: '999', TASK_DURATION_MS: '10' }).jobTimeoutMs,
      1000,
    );
  });

  test('IDEMPOTENCY_STALE_CLAIM_MS is 30 s unless set, at least 1 s, and when set must exceed COMMAND_TIMEOUT_MS', () => {
    assert.equal(loadConfig({}).idempotencyStaleClaimMs, 30_000);
    assert.equal(
      loadConfig({ IDEMPOTENCY_STALE_CLAIM_MS: '6000', COMMAND_TIMEOUT_MS: '5000' }).idempotencyStaleClaimMs,
      6_000,
    );
    assertRejects({ IDEMPOTENCY_STALE_CLAIM_MS: '5000', COMMAND_TIMEOUT_MS: '5000' }, 'IDEMPOTENCY_STALE_CLAIM_MS');
    assertRejects({ IDEMPOTENCY_STALE_CLAIM_MS: '999' }, 'IDEMPOTENCY_STALE_CLAIM_MS');
    // A long COMMAND_TIMEOUT_MS alone is accepted, as it was before the setting existed.
    assert.equal(loadConfig({ COMMAND_TIMEOUT_MS: '40000' }).idempotencyStaleClaimMs, 30_000);
  });

  test('API_KEY must be at least 16 characters; METRICS_PUBLIC is a boolean', () => {
    assertRejects({ API_KEY: 'short' }, 'API_KEY');
    assert.equal(loadConfig({ API_KEY: 'x'.repeat(16) }).apiKey, 'x'.repeat(16));
    assert.equal(loadConfig({ METRICS_PUBLIC: 'true' }).metricsPublic, true);
    assertRejects({ METRICS_PUBLIC: 'yes' }, 'METRICS_PUBLIC');
  });

  test('ADMIN_UI is on by default, and a boolean', () => {
    assert.equal(loadConfig({}).adminUi, true);
    assert.equal(loadConfig({ ADMIN_UI: 'false' }).adminUi, false);
    assert.equal(loadConfig({ ADMIN_UI: '0' }).adminUi, false);
    assert.equal(loadConfig({ ADMIN_UI: 'true' }).adminUi, true);
    assert.equal(loadConfig({ ADMIN_UI: '' }).adminUi, true, 'empty means unset');
    assertRejects({ ADMIN_UI: 'off' }, 'ADMIN_UI');
  });
});

describe('secure by default: API_KEY, HOST and ALLOW_UNAUTHENTICATED', () => {
  const KEY = 'k'.repeat(16);

  test('ALLOW_UNAUTHENTICATED is off by default, and a boolean', () => {
    assert.equal(loadConfig({}).allowUnauthenticated, false);
    assert.equal(loadConfig({ ALLOW_UNAUTHENTICATED: 'true' }).allowUnauthenticated, true);
    assert.equal(loadConfig({ ALLOW_UNAUTHENTICATED: '1' }).allowUnauthenticated, true);
    assert.equal(loadConfig({ ALLOW_UNAUTHENTICATED: '' }).allowUnauthenticated, false, 'empty means unset');
    assertRejects({ ALLOW_UNAUTHENTICATED: 'yes' }, 'ALLOW_UNAUTHENTICATED');
  });

  test('loopback addresses and localhost are loopback; every other address or name is not', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1'])
      assert.ok(isLoopbackHost(host), host);
    for (const host of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.2', 'example.internal', 'localhost.evil', '128.0.0.1'])
      assert.ok(!isLoopbackHost(host), host);
  });

  test('without a key, a reachable HOST is refused unless ALLOW_UNAUTHENTICATED; loopback is quiet', () => {
    const exposure = (env: Record<string, string>) => exposureOf(loadConfig(env));
    assert.equal(exposure({}), 'loopback', 'the default HOST is loopback');
    assert.equal(exposure({ HOST: '0.0.0.0' }), 'refused');
    assert.equal(exposure({ HOST: 'example.internal' }), 'refused');
    assert.equal(exposure({ HOST: '0.0.0.0', ALLOW_UNAUTHENTICATED: 'true' }), 'open-on-purpose');
    assert.equal(exposure({ HOST: '0.0.0.0', API_KEY: KEY }), 'keyed');
    assert.equal(exposure({ HOST: '0.0.0.0', API_KEY: KEY, ALLOW_UNAUTHENTICATED: 'true' }), 'keyed');
    assert.equal(exposure({ API_KEY: KEY }), 'keyed');
    assert.equal(exposure({ HOST: '0.0.0.0', API_KEY: '' }), 'refused', 'an empty API_KEY is no key');
  });
});

describe('DUMMY_JOB_NAMES', () => {
  test('unset is none; a comma-separated list of job names, spaces around them ignored; * alone is any', () => {
    assert.deepEqual(loadConfig({}).dummyJobNames, []);
    assert.deepEqual(loadConfig({ DUMMY_JOB_NAMES: 'resize-image' }).dummyJobNames, ['resize-image']);
    assert.deepEqual(loadConfig({ DUMMY_JOB_NAMES: 'a, b.c ,d:e' }).dummyJobNames, ['a', 'b.c', 'd:e']);
    assert.equal(loadConfig({ DUMMY_JOB_NAMES: '*' }).dummyJobNames, '*');
    assert.equal(loadConfig({ DUMMY_JOB_NAMES: ' * ' }).dummyJobNames, '*');
  });

  test('refuses what no task could be named: empty entries, bad characters, * among names', () => {
    for (const value of ['a,,b', 'a,', '-a', 'a b', '*,a', 'a,*', 'x'.repeat(129)])
      assertRejects({ DUMMY_JOB_NAMES: value }, 'DUMMY_JOB_NAMES');
  });
});

describe('event stream settings', () => {
  test('SSE_MAX_STREAMS is 1000 and SSE_MAX_LIFETIME_MS an hour unless set; at least 1 stream, 1 s', () => {
    const config = loadConfig({});
    assert.equal(config.sseMaxStreams, 1_000);
    assert.equal(config.sseMaxLifetimeMs, 3_600_000);
    const set = loadConfig({ SSE_MAX_STREAMS: '1', SSE_MAX_LIFETIME_MS: '1000' });
    assert.equal(set.sseMaxStreams, 1);
    assert.equal(set.sseMaxLifetimeMs, 1_000);
    assertRejects({ SSE_MAX_STREAMS: '0' }, 'SSE_MAX_STREAMS');
    assertRejects({ SSE_MAX_LIFETIME_MS: '999' }, 'SSE_MAX_LIFETIME_MS');
  });
});

describe('ownership settings', () => {
  test('defaults: retirement after 10 s of an expired lease, stealing on, no instance or fault hook', () => {
    const config = loadConfig({});
    assert.equal(config.workerRetireMs, 10_000);
    assert.equal(config.workStealing, true);
    assert.equal(config.instanceId, undefined);
    assert.equal(config.killHook, false);
  });

  test('WORKER_RETIRE_MS must exceed WORKER_TTL_MS', () => {
    assertRejects({ WORKER_TTL_MS: '5000', WORKER_RETIRE_MS: '5000' }, 'WORKER_RETIRE_MS');
    assertRejects({ WORKER_TTL_MS: '20000' }, 'WORKER_RETIRE_MS');
    assert.equal(loadConfig({ WORKER_TTL_MS: '5000', WORKER_RETIRE_MS: '5001' }).workerRetireMs, 5001);
  });

  test('WORK_STEALING is a boolean; the instance id and the fault hook are checked', () => {
    assert.equal(loadConfig({ WORK_STEALING: 'false' }).workStealing, false);
    assertRejects({ WORK_STEALING: 'sometimes' }, 'WORK_STEALING');
    assert.equal(loadConfig({ BULLPEN_INSTANCE_ID: 'a1b2-c3' }).instanceId, 'a1b2-c3');
    assertRejects({ BULLPEN_INSTANCE_ID: 'a/b' }, 'BULLPEN_INSTANCE_ID');
    assert.equal(loadConfig({ BULLPEN_KILL_HOOK: 'true' }).killHook, true);
    assertRejects({ BULLPEN_KILL_HOOK: 'sometime' }, 'BULLPEN_KILL_HOOK');
  });
});

describe('REDIS_CLUSTER_NODES', () => {
  test('seed nodes as host:port, or URLs that carry the password and TLS of every node', () => {
    assert.deepEqual(loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000, 127.0.0.1:7001,' }).redisCluster, {
      kind: 'cluster',
      nodes: [
        { host: '127.0.0.1', port: 7000 },
        { host: '127.0.0.1', port: 7001 },
      ],
      username: undefined,
      password: undefined,
      tls: false,
    });
    const secured = loadConfig({ REDIS_CLUSTER_NODES: 'rediss://app:s%40cret@redis-a:6380,redis-b:6380' }).redisCluster;
    assert.deepEqual(secured?.nodes, [
      { host: 'redis-a', port: 6380 },
      { host: 'redis-b', port: 6380 },
    ]);
    assert.deepEqual([secured?.username, secured?.password, secured?.tls], ['app', 's@cret', true]);
    assert.equal(loadConfig({}).redisCluster, undefined);
  });

  test('refuses what cannot be a node list, two kinds of Redis at once, and a tagged prefix', () => {
    for (const nodes of [',', 'redis-a', 'redis-a:0', 'redis-a:70000', 'http://redis-a:6379', 'redis://a:1/2']) {
      assertRejects({ REDIS_CLUSTER_NODES: nodes }, 'REDIS_CLUSTER_NODES');
    }
    assertRejects({ REDIS_CLUSTER_NODES: 'redis://:a@x:1,redis://:b@y:1' }, 'REDIS_CLUSTER_NODES');
    assertRejects({ REDIS_CLUSTER_NODES: 'x:1', REDIS_URL: 'redis://x:1' }, 'REDIS_CLUSTER_NODES');
    assertRejects({ REDIS_CLUSTER_NODES: 'x:1', QUEUE_PREFIX: '{bullpen}' }, 'QUEUE_PREFIX');
    // One Redis may take a tagged prefix: it shares the server with other deployments' keys.
    assert.equal(loadConfig({ QUEUE_PREFIX: '{bullpen}' }).prefix, '{bullpen}');
  });
});

describe('ENQUEUE_MIN_REPLICAS (durable acceptance)', () => {
  test('off by default, with a 1 s wait for replicas when it is on', () => {
    const config = loadConfig({});
    assert.equal(config.enqueueMinReplicas, 0);
    assert.equal(config.enqueueReplicaTimeoutMs, 1_000);
    const on = loadConfig({
      REDIS_URL: 'redis://x:1',
      ENQUEUE_MIN_REPLICAS: '2',
      ENQUEUE_REPLICA_TIMEOUT_MS: '250',
    });
    assert.deepEqual([on.enqueueMinReplicas, on.enqueueReplicaTimeoutMs], [2, 250]);
  });

  test('refused without REDIS_URL, on a Redis Cluster, and out of bounds', () => {
    const alone = assertRejects({ ENQUEUE_MIN_REPLICAS: '1' }, 'ENQUEUE_MIN_REPLICAS');
    assert.match(alone.message, /REDIS_URL or REDIS_SENTINELS/);
    assert.equal(
      loadConfig({ REDIS_SENTINELS: 'x:26379', REDIS_SENTINEL_MASTER: 'main', ENQUEUE_MIN_REPLICAS: '1' })
        .enqueueMinReplicas,
      1,
      'Sentinel, its main use',
    );
    const cluster = assertRejects({ ENQUEUE_MIN_REPLICAS: '1', REDIS_CLUSTER_NODES: 'x:1' }, 'ENQUEUE_MIN_REPLICAS');
    assert.match(cluster.message, /Redis Cluster/);
    // Off, it is no reason to refuse either.
    assert.equal(loadConfig({ ENQUEUE_MIN_REPLICAS: '0', REDIS_CLUSTER_NODES: 'x:1' }).enqueueMinReplicas, 0);
    assertRejects({ REDIS_URL: 'redis://x:1', ENQUEUE_MIN_REPLICAS: '-1' }, 'ENQUEUE_MIN_REPLICAS');
    assertRejects({ REDIS_URL: 'redis://x:1', ENQUEUE_MIN_REPLICAS: '65' }, 'ENQUEUE_MIN_REPLICAS');
    assertRejects({ ENQUEUE_REPLICA_TIMEOUT_MS: '9' }, 'ENQUEUE_REPLICA_TIMEOUT_MS');
  });
});

describe('REDIS_SENTINELS', () => {
  test('sentinels as host:port or URLs (their credentials and TLS), the master by name, its own password', () => {
    const plain = loadConfig({ REDIS_SENTINELS: '127.0.0.1:26379, 127.0.0.1:26380', REDIS_SENTINEL_MASTER: 'main' });
    assert.deepEqual(plain.redisSentinel, {
      kind: 'sentinel',
      sentinels: [
        { host: '127.0.0.1', port: 26379 },
        { host: '127.0.0.1', port: 26380 },
      ],
      master: 'main',
      sentinelUsername: undefined,
      sentinelPassword: undefined,
      username: undefined,
      password: undefined,
      tls: false,
    });
    assert.equal(plain.sentinelStartTimeoutMs, 15_000);
    const secured = loadConfig({
      REDIS_SENTINELS: 'rediss://watcher:s%40cret@sentinel-a:26379,sentinel-b:26379',
      REDIS_SENTINEL_MASTER: 'main',
      REDIS_USERNAME: 'app',
      REDIS_PASSWORD: 'data-secret',
      REDIS_SENTINEL_START_TIMEOUT_MS: '5000',
    });
    const target = secured.redisSentinel;
    assert.deepEqual(
      [target?.sentinelUsername, target?.sentinelPassword, target?.username, target?.password, target?.tls],
      ['watcher', 's@cret', 'app', 'data-secret', true],
    );
    assert.equal(secured.sentinelStartTimeoutMs, 5_000);
    assert.equal(loadConfig({}).redisSentinel, undefined);
  });

  test('one mode only, named in the refusal; the sentinels and the master name together; no stray password', () => {
    const mixed = assertRejects(
      { REDIS_URL: 'redis://x:1', REDIS_SENTINELS: 'x:26379', REDIS_SENTINEL_MASTER: 'main' },
      'REDIS_SENTINELS',
    );
    assert.match(mixed.message, /REDIS_URL and REDIS_SENTINELS are set/);
    const all = assertRejects(
      {
        REDIS_URL: 'redis://x:1',
        REDIS_CLUSTER_NODES: 'x:2',
        REDIS_SENTINELS: 'x:26379',
        REDIS_SENTINEL_MASTER: 'main',
      },
      'REDIS_CLUSTER_NODES',
    );
    assert.match(all.message, /REDIS_URL and REDIS_CLUSTER_NODES and REDIS_SENTINELS are set/);
    assertRejects({ REDIS_SENTINELS: 'x:26379' }, 'REDIS_SENTINEL_MASTER');
    assertRejects({ REDIS_SENTINEL_MASTER: 'main' }, 'REDIS_SENTINEL_MASTER');
    assertRejects({ REDIS_SENTINELS: 'x', REDIS_SENTINEL_MASTER: 'main' }, 'REDIS_SENTINELS');
    assertRejects({ REDIS_URL: 'redis://x:1', REDIS_PASSWORD: 'secret' }, 'REDIS_PASSWORD');
    assertRejects(
      { REDIS_SENTINELS: 'x:1', REDIS_SENTINEL_MASTER: 'main', REDIS_SENTINEL_START_TIMEOUT_MS: '10' },
      'REDIS_SENTINEL_START_TIMEOUT_MS',
    );
  });
});
