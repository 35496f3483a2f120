/**
 * Bullpen through Redis Sentinel with passwords and TLS (issue 21: "the passwords for the sentinels
 * and for Redis, TLS as for the other modes"), against real redis-servers (test/support/redis-sentinel.ts).
 * The sentinels' password and TLS come with the REDIS_SENTINELS URLs; the master's and replicas'
 * password is REDIS_PASSWORD; the test CA is trusted through NODE_EXTRA_CA_CERTS, as in the other
 * modes, for the sentinels and the data nodes alike. A wrong password for either side stops start-up
 * with a stable event instead of processes that wait for ever, and no password reaches a log line.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { probeRedis } from '../../src/local-redis/ping.js';
import { assertRefusesWithoutPassword } from '../support/redis-nodes.js';
import { startRedisSentinel, type TestSentinel } from '../support/redis-sentinel.js';
import { worksThroughSentinel } from '../support/sentinel-checks.js';
import { refusedAtStart } from '../support/refused-start.js';
import { startService, type LogLine, type Service, type ServiceOptions } from '../support/service.js';
import { createTestCertificates, skipUnlessOpenssl, type TestCertificates } from '../support/tls-certs.js';

const WORKERS = 2;
const PASSWORD = 'data s3cret';
const SENTINEL_PASSWORD = 'sentinel s3cret';

/** `host:port` → the parts a client takes. */
function addressOf(hostPort: string): { host: string; port: number } {
  const [host = '', port = ''] = hostPort.split(':');
  return { host, port: Number(port) };
}

/** No line the service wrote, nor its stderr, holds any of `secrets`, raw or URL-encoded. */
function assertNoSecretLogged(service: Service, secrets: readonly string[]): void {
  const written = [...service.logs.map((line) => JSON.stringify(line)), service.stderr()].join('\n');
  for (const secret of secrets) {
    for (const form of [secret, encodeURIComponent(secret)]) {
      assert.ok(!written.includes(form), `a log line holds the password "${secret}"`);
    }
  }
}

/** A service that must not start: its fatal line, once it exited 1 without a fork, and no secret in its log. */
async function refusedWithoutSecrets(options: Omit<ServiceOptions, 'workers' | 'waitUntilReady'>): Promise<LogLine> {
  const { fatal, service } = await refusedAtStart(options);
  assertNoSecretLogged(service, [PASSWORD, SENTINEL_PASSWORD, 'wrong password']);
  return fatal;
}

describe('Redis Sentinel with passwords', { timeout: 180_000 }, () => {
  let sentinel: TestSentinel;
  let service: Service;
  const settings = (): Pick<ServiceOptions, 'redisUrl' | 'sentinels'> => ({
    redisUrl: '',
    sentinels: { list: sentinel.sentinels, master: sentinel.master },
  });

  before(async () => {
    sentinel = await startRedisSentinel({ password: PASSWORD, sentinelPassword: SENTINEL_PASSWORD });
    service = await startService({ ...settings(), workers: WORKERS, env: { REDIS_PASSWORD: PASSWORD } });
  });
  after(async () => {
    await service?.stop();
    await sentinel?.stop();
  });

  test('the master and the sentinels refuse a client without their password', async () => {
    await assertRefusesWithoutPassword(addressOf(await sentinel.currentMaster()));
    for (const entry of sentinel.sentinels.split(',')) {
      const { hostname, port } = new URL(entry);
      await assertRefusesWithoutPassword({ host: hostname, port: Number(port) }, undefined, ['SENTINEL', 'MASTERS']);
    }
  });

  test('with both passwords, jobs complete and /healthz names the master', async () => {
    await worksThroughSentinel(service, sentinel, 'sentinel-behind-passwords');
    assertNoSecretLogged(service, [PASSWORD, SENTINEL_PASSWORD]);
  });

  // No short REDIS_SENTINEL_START_TIMEOUT_MS: a refusal is final, and stops start-up without waiting it out.
  test('a wrong REDIS_PASSWORD stops start-up, naming the master and the setting', async () => {
    const master = await sentinel.currentMaster();
    const fatal = await refusedWithoutSecrets({ ...settings(), env: { REDIS_PASSWORD: 'wrong password' } });
    assert.equal(fatal.event, 'redis.credentials-refused');
    assert.deepEqual([fatal.role, fatal.endpoint, fatal.setting], ['master', master, 'REDIS_PASSWORD']);
    assert.match(String(fatal.reason), /^WRONGPASS/);
  });

  test('sentinels given without their password stop start-up, naming the setting', async () => {
    const list = sentinel.sentinels.replaceAll(`:${encodeURIComponent(SENTINEL_PASSWORD)}@`, '');
    assert.doesNotMatch(list, /@/);
    const fatal = await refusedWithoutSecrets({
      redisUrl: '',
      sentinels: { list, master: sentinel.master },
      env: { REDIS_PASSWORD: PASSWORD },
    });
    assert.equal(fatal.event, 'redis.credentials-refused');
    assert.deepEqual([fatal.role, fatal.setting], ['sentinel', 'REDIS_SENTINELS']);
    assert.ok(list.split(',').includes(`redis://${String(fatal.endpoint)}`), 'it names a sentinel');
    assert.match(String(fatal.reason), /^NOAUTH/);
  });
});

describe('Redis Sentinel over TLS', { timeout: 180_000, skip: skipUnlessOpenssl() }, () => {
  let certificates: TestCertificates;
  let sentinel: TestSentinel;
  let service: Service;

  before(async () => {
    certificates = await createTestCertificates();
    sentinel = await startRedisSentinel({
      tls: certificates,
      password: PASSWORD,
      sentinelPassword: SENTINEL_PASSWORD,
    });
    service = await startService({
      redisUrl: '',
      sentinels: { list: sentinel.sentinels, master: sentinel.master },
      workers: WORKERS,
      env: { REDIS_PASSWORD: PASSWORD, NODE_EXTRA_CA_CERTS: certificates.caFile },
    });
  });
  after(async () => {
    await service?.stop();
    await sentinel?.stop();
    certificates?.remove();
  });

  test('the sentinels and the master speak TLS only', async () => {
    assert.match(sentinel.sentinels, /^rediss:\/\//);
    for (const entry of sentinel.sentinels.split(',')) {
      const probe = await probeRedis('127.0.0.1', Number(new URL(entry).port), 2_000);
      assert.notEqual(probe.state, 'pong', `sentinel ${entry} answered a plain PING`);
    }
    const master = addressOf(await sentinel.currentMaster());
    assert.notEqual((await probeRedis(master.host, master.port, 2_000)).state, 'pong');
  });

  test('with the CA given, jobs complete and /healthz names the master', async () => {
    await worksThroughSentinel(service, sentinel, 'sentinel-over-tls');
    assertNoSecretLogged(service, [PASSWORD, SENTINEL_PASSWORD]);
  });

  test('without the CA, start-up stops at once and says why', async () => {
    const fatal = await refusedWithoutSecrets({
      redisUrl: '',
      sentinels: { list: sentinel.sentinels, master: sentinel.master },
      env: { REDIS_PASSWORD: PASSWORD },
    });
    assert.equal(fatal.event, 'redis.tls-untrusted');
    assert.equal(fatal.code, 'SELF_SIGNED_CERT_IN_CHAIN');
    assert.equal(fatal.fix, 'NODE_EXTRA_CA_CERTS');
  });
});
