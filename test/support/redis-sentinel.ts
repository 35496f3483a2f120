/**
 * A real Redis Sentinel setup for tests (issue 21): one master, `replicas` replicas and three
 * sentinels, every one a redis-server on a free loopback port, under one temporary folder that
 * `stop` removes. The sentinels see a master down after `downAfterMs` (1 s by default) and promote a
 * replica within a few seconds, so that a failover can be proved under a test's time-out. Failover
 * is real: `killMaster` SIGKILLs the master's process, and `waitForPromotion` waits until every
 * sentinel names another.
 *
 * With `password` the master and replicas ask for it (and give it to each other), and the sentinels
 * are told it (`sentinel auth-pass`); with `sentinelPassword` the sentinels ask for one of their own;
 * with `tls` every node and sentinel serves TLS only, with the given certificates
 * (test/support/tls-certs.ts), and speaks TLS to the others (`tls-replication`). `sentinels` then
 * lists URLs that carry the sentinels' password and scheme, as REDIS_SENTINELS takes them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { probeRedis } from '../../src/local-redis/server.js';
import { freePort } from './ports.js';
import { pingOnce } from './redis-server.js';
import { redisTlsArgs, type TestCertificates } from './tls-certs.js';
import { waitFor } from './wait.js';

const HOST = '127.0.0.1';
/** Every node and sentinel answers within this on a busy 2-core machine. */
const START_TIMEOUT_MS = 20_000;

export interface TestSentinel {
  /** The name the sentinels monitor the master by. */
  readonly master: string;
  /**
   * `REDIS_SENTINELS`: every sentinel as `host:port`, or, with `sentinelPassword` or `tls`, as a
   * `redis://` or `rediss://` URL with the sentinels' password.
   */
  readonly sentinels: string;
  /** `host:port` of the master as the sentinels name it now. */
  currentMaster(): Promise<string>;
  /** SIGKILLs the master the sentinels name now; resolves with its address. */
  killMaster(): Promise<string>;
  /** Resolves with the new master once every sentinel names one other than `old`. */
  waitForPromotion(old: string, timeoutMs?: number): Promise<string>;
  /** A plain client of the master the sentinels name (ioredis's Sentinel mode), closed by `stop`. */
  readonly client: Redis;
  stop(): Promise<void>;
}

export interface StartSentinelOptions {
  readonly replicas?: number;
  readonly downAfterMs?: number;
  readonly master?: string;
  /** The master's and replicas' password (`requirepass`, `masterauth`), which the sentinels are told. */
  readonly password?: string;
  /** The sentinels' own password (`requirepass` of each sentinel). */
  readonly sentinelPassword?: string;
  /** Every node and sentinel serves TLS only, with these certificates, and speaks TLS to the others. */
  readonly tls?: TestCertificates;
}

/** A value for a redis.conf line: quoted, so that a password may hold spaces. */
const quoted = (value: string) => JSON.stringify(value);

export async function startRedisSentinel({
  replicas = 1,
  downAfterMs = 1_000,
  master = 'bullpen-main',
  password,
  sentinelPassword,
  tls,
}: StartSentinelOptions = {}): Promise<TestSentinel> {
  const dir = mkdtempSync(join(tmpdir(), 'bullpen-sentinel-'));
  const children = new Map<number, ChildProcess>();
  /** What keeps a killed master's port taken. */
  const holders: Server[] = [];
  // What the harness's own connections add: the test CA, and each side's password.
  const tlsOptions: RedisOptions = tls === undefined ? {} : { tls: { ca: tls.ca } };
  const dataOptions: RedisOptions = { ...tlsOptions, ...(password === undefined ? {} : { password }) };
  const sentinelOptions: RedisOptions = {
    ...tlsOptions,
    ...(sentinelPassword === undefined ? {} : { password: sentinelPassword }),
  };
  /** Whether a server answers: the raw probe for a plain one (PONG, or NOAUTH), a PING over TLS else. */
  const answers = async (port: number, options: RedisOptions): Promise<boolean> => {
    if (tls === undefined) {
      const probe = await probeRedis(HOST, port);
      return probe.state === 'pong' || (probe.state === 'answered' && probe.reply.startsWith('-NOAUTH'));
    }
    return pingOnce({ host: HOST, port, ...options }).catch(() => false);
  };
  const spawnServer = async (port: number, args: readonly string[], options: RedisOptions) => {
    const child = spawn('redis-server', [...args], { stdio: 'ignore' });
    children.set(port, child);
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited with ${child.exitCode}`);
        return answers(port, options);
      },
      { timeoutMs: START_TIMEOUT_MS, what: `redis-server on port ${port}` },
    );
  };
  const dataNode = async (replicaOf: number | undefined) => {
    const port = await freePort();
    const nodeDir = join(dir, `node-${port}`);
    mkdirSync(nodeDir);
    await spawnServer(
      port,
      [
        ...(tls === undefined ? ['--port', String(port)] : [...redisTlsArgs(tls, port), '--tls-replication', 'yes']),
        '--bind',
        HOST,
        '--dir',
        nodeDir,
        '--save',
        '',
        '--appendonly',
        'no',
        ...(password === undefined ? [] : ['--requirepass', password, '--masterauth', password]),
        ...(replicaOf === undefined ? [] : ['--replicaof', HOST, String(replicaOf)]),
      ],
      dataOptions,
    );
    return port;
  };

  try {
    const masterPort = await dataNode(undefined);
    for (let index = 0; index < replicas; index += 1) await dataNode(masterPort);
    const sentinelPorts: number[] = [];
    for (let index = 0; index < 3; index += 1) {
      const port = await freePort();
      // A sentinel rewrites its own configuration file: each has one of its own.
      const conf = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          ...(tls === undefined
            ? [`port ${port}`]
            : [
                'port 0',
                `tls-port ${port}`,
                `tls-cert-file ${quoted(tls.certFile)}`,
                `tls-key-file ${quoted(tls.keyFile)}`,
                `tls-ca-cert-file ${quoted(tls.caFile)}`,
                'tls-auth-clients no',
                // To the master, the replicas and the other sentinels.
                'tls-replication yes',
              ]),
          // Without `sentinel sentinel-pass`, a sentinel gives its own requirepass to the others too.
          ...(sentinelPassword === undefined ? [] : [`requirepass ${quoted(sentinelPassword)}`]),
          `bind ${HOST}`,
          `dir ${dir}`,
          `sentinel monitor ${master} ${HOST} ${masterPort} 2`,
          ...(password === undefined ? [] : [`sentinel auth-pass ${master} ${quoted(password)}`]),
          `sentinel down-after-milliseconds ${master} ${downAfterMs}`,
          `sentinel failover-timeout ${master} ${Math.max(downAfterMs * 3, 3_000)}`,
          `sentinel parallel-syncs ${master} 1`,
          '',
        ].join('\n'),
      );
      await spawnServer(port, [conf, '--sentinel'], sentinelOptions);
      sentinelPorts.push(port);
    }
    const sentinelList = sentinelPorts.map((port) => ({ host: HOST, port }));
    const ask = async (port: number): Promise<string | undefined> => {
      const probe = new Redis({
        host: HOST,
        port,
        ...sentinelOptions,
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      probe.on('error', () => {});
      try {
        await probe.connect();
        const reply = await probe.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', master);
        return Array.isArray(reply) ? `${String(reply[0])}:${String(reply[1])}` : undefined;
      } catch {
        return undefined;
      } finally {
        probe.disconnect();
      }
    };
    const currentMaster = async () => {
      const [first] = sentinelPorts;
      const answer = first === undefined ? undefined : await ask(first);
      if (answer === undefined) throw new Error('the first sentinel names no master');
      return answer;
    };
    // Every replica in sync, and every sentinel aware of the others, before a test relies on a failover.
    await waitFor(
      async () => {
        const info = await ask(sentinelPorts[0] ?? 0);
        if (info === undefined) return false;
        const probe = new Redis({ host: HOST, port: masterPort, ...dataOptions, lazyConnect: true });
        probe.on('error', () => {});
        try {
          await probe.connect();
          const replication = await probe.info('replication');
          const synced = (replication.match(/^slave\d+:.*state=online/gm) ?? []).length;
          const seen = await Promise.all(
            sentinelPorts.map(async (port) => {
              const sentinel = new Redis({ host: HOST, port, ...sentinelOptions, lazyConnect: true });
              sentinel.on('error', () => {});
              try {
                await sentinel.connect();
                const reply = (await sentinel.call('SENTINEL', 'MASTER', master)) as unknown[];
                const index = reply.indexOf('num-other-sentinels');
                return Number(reply[index + 1]);
              } finally {
                sentinel.disconnect();
              }
            }),
          );
          return synced >= replicas && seen.every((count) => count >= 2);
        } finally {
          probe.disconnect();
        }
      },
      { timeoutMs: START_TIMEOUT_MS, what: 'replicas in sync and sentinels that know each other' },
    );
    const client = new Redis({
      sentinels: sentinelList,
      name: master,
      maxRetriesPerRequest: 20,
      ...dataOptions,
      ...(sentinelPassword === undefined ? {} : { sentinelPassword }),
      ...(tls === undefined ? {} : { sentinelTLS: { ca: tls.ca }, enableTLSForSentinelMode: true }),
    });
    client.on('error', () => {});
    const scheme = tls === undefined ? 'redis' : 'rediss';
    const auth = sentinelPassword === undefined ? '' : `:${encodeURIComponent(sentinelPassword)}@`;
    const entry = ({ host, port }: { host: string; port: number }) =>
      sentinelPassword === undefined && tls === undefined ? `${host}:${port}` : `${scheme}://${auth}${host}:${port}`;
    return {
      master,
      sentinels: sentinelList.map(entry).join(','),
      client,
      currentMaster,
      async killMaster() {
        const address = await currentMaster();
        const port = Number(address.split(':')[1]);
        const child = children.get(port);
        if (child === undefined) throw new Error(`no process of this harness serves ${address}`);
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
        // Held until `stop`: a redis-server another test starts meanwhile could otherwise get the dead
        // master's port, and a process that asks a sentinel before the promotion would find a master there.
        holders.push(await holdPort(port));
        return address;
      },
      async waitForPromotion(old, timeoutMs = 30_000) {
        let promoted = '';
        await waitFor(
          async () => {
            const answers = await Promise.all(sentinelPorts.map(ask));
            const [first] = answers;
            if (first === undefined || first === old || answers.some((answer) => answer !== first)) return false;
            promoted = first;
            return true;
          },
          { timeoutMs, what: `a replica promoted in place of ${old}` },
        );
        return promoted;
      },
      async stop() {
        client.disconnect();
        await Promise.all(holders.map((holder) => new Promise((resolve) => holder.close(resolve))));
        await stopAll(children);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await stopAll(children);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

async function stopAll(children: ReadonlyMap<number, ChildProcess>): Promise<void> {
  await Promise.all(
    [...children.values()].map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }),
  );
}

/** Listens on `port` and drops every connection at once, as a dead server's port refuses them. */
function holdPort(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen(port, HOST, () => resolve(server));
  });
}
