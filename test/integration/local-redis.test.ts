/**
 * The private redis-server that `npm start` launches when REDIS_URL is unset, driven for real: the
 * service (`node dist/src/main.js`, one worker) with REDIS_DATA_DIR in a temporary directory.
 *
 * - It runs on a loopback port of its own, recorded in `server.json`, never on the shared 6379, and
 *   the service works on it.
 * - It outlives a Ctrl-C to the service's process group while a running job finishes, and stops
 *   cleanly afterwards: the job's result is there after the next start, from the AOF.
 * - It stops by itself when its primary is SIGKILLed.
 * - One left running by an earlier run is reused, the log says so, and the new primary watches it.
 * - Of two starts at once on one data directory, one serves and the other is refused, naming the
 *   owner; only one server ever takes the directory.
 * - A recorded port taken by a password-protected Redis or by something else stops start-up with
 *   what answers there and redis-server's own last lines, and exit code 1.
 *
 * Also the three answers of the raw PING probe, against real servers. Everything started here is
 * stopped in `after`. Nothing binds or connects outside 127.0.0.1.
 *
 * Single mode only (test/support/test-redis.ts): the private server is one redis-server by design;
 * a Redis Cluster is always one the operator runs (`REDIS_CLUSTER_NODES`).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { probeRedis } from '../../src/local-redis/ping.js';
import { inspectServer } from '../../src/local-redis/owner.js';
import { isRunning } from '../../src/local-redis/terminate.js';
import { readJob } from '../support/jobs.js';
import { lineOf, linesOf, logged } from '../support/log-lines.js';
import { spawnMain } from '../support/main-process.js';
import { freePort } from '../support/ports.js';
import { startRedis } from '../support/redis-server.js';
import { startService, type LogLine, type Service } from '../support/service.js';
import { waitFor } from '../support/wait.js';

interface ServerJson {
  readonly port: number;
  readonly pid: number;
  readonly ownerPid: number;
  readonly watchdogPid: number;
}

/** Every process and directory this file starts or makes, for `after`. */
const pids = new Set<number>();
const dirs: string[] = [];
const servers: Server[] = [];
const children: ChildProcess[] = [];

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  // Only what still runs one of our programs: a pid that ended early may belong to someone else now.
  const ours = [...pids].filter(
    (pid) => isRunning(pid) && /redis-server|main\.js|watchdog-process/.test(commandLine(pid)),
  );
  for (const pid of ours) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  for (const server of servers) server.close();
  await waitFor(() => ours.every((pid) => !isRunning(pid)), {
    timeoutMs: 10_000,
    what: 'every process this file started to be gone',
  });
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bullpen-local-redis-'));
  dirs.push(dir);
  return dir;
}

function readRecord(dir: string): ServerJson {
  const record = JSON.parse(readFileSync(join(dir, 'server.json'), 'utf8')) as ServerJson;
  for (const pid of [record.pid, record.ownerPid, record.watchdogPid]) if (pid !== undefined) pids.add(pid);
  return record;
}

function remember(service: Service): Service {
  if (service.child.pid !== undefined) pids.add(service.child.pid);
  return service;
}

/** The service as `npm start` runs it: REDIS_URL unset (empty means unset), one worker. */
async function startPrivate(
  dir: string,
  options: { waitUntilReady?: boolean; prefix?: string; hostId?: string } = {},
): Promise<Service> {
  const service = await startService({
    redisUrl: '',
    workers: 1,
    waitUntilReady: options.waitUntilReady ?? true,
    ...(options.prefix !== undefined ? { prefix: options.prefix } : {}),
    env: { REDIS_DATA_DIR: dir, SHUTDOWN_TIMEOUT_MS: '10000', HOST_ID: options.hostId ?? 'test' },
  });
  return remember(service);
}

function workerPids(logs: readonly LogLine[]): number[] {
  const found = linesOf(logs, 'process.forked').map((line) => Number(line.childPid));
  for (const pid of found) pids.add(pid);
  return found;
}

/** SIGKILL of the primary and its workers, as an OOM killer or `kill -9` of the lot would do. */
async function killHard(service: Service): Promise<void> {
  const workers = workerPids(service.logs);
  service.child.kill('SIGKILL');
  await service.exited;
  for (const pid of workers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited already
    }
  }
  await waitFor(() => workers.every((pid) => !isRunning(pid)), { timeoutMs: 10_000, what: 'the workers to be gone' });
}

async function waitUntilGone(pid: number, port: number, what: string): Promise<void> {
  await waitFor(async () => !isRunning(pid) && (await probeRedis('127.0.0.1', port)).state === 'silent', {
    timeoutMs: 45_000,
    what,
  });
}

/** The error that stopped start-up, as its fatal line carries it. */
function startFailure(logs: readonly LogLine[]): Readonly<Record<string, unknown>> {
  const line = lineOf(logs, 'start.failed', { level: 60 });
  assert.ok(line, `start-up failed with a fatal line saying why; the lines: ${JSON.stringify(logs)}`);
  return line.err as Readonly<Record<string, unknown>>;
}

/**
 * Start-up on a data directory whose recorded port (`server.json`) is taken: it exits 1 with a
 * failed start on that port, whose error is returned.
 */
async function startOnTakenPort(dir: string, port: number): Promise<Readonly<Record<string, unknown>>> {
  writeFileSync(join(dir, 'server.json'), JSON.stringify({ port }));
  const service = await startPrivate(dir, { waitUntilReady: false });
  assert.equal(await service.exited, 1);
  const err = startFailure(service.logs);
  assert.equal(err.code, 'REDIS_SERVER_START_FAILED');
  assert.equal(err.port, port);
  return err;
}

/** A loopback listener the test owns, answering every connection with `reply` (nothing when undefined). */
async function listener(reply: string | undefined): Promise<number> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    if (reply !== undefined) socket.end(reply);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

/** A password-protected redis-server the test owns. */
async function passwordRedis(): Promise<number> {
  const port = await freePort();
  const dir = dataDir();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', 'secret-password', '--save', '', '--dir', dir],
    {
      stdio: 'ignore',
    },
  );
  children.push(child);
  if (child.pid !== undefined) pids.add(child.pid);
  await waitFor(async () => (await probeRedis('127.0.0.1', port)).state === 'answered', {
    timeoutMs: 10_000,
    what: 'the password-protected redis-server',
  });
  return port;
}

describe('the private redis-server of npm start', { timeout: 240_000 }, () => {
  test('runs on a port of its own recorded in server.json, outlives a Ctrl-C while a job finishes, then stops cleanly', async () => {
    const dir = dataDir();
    const httpPort = await freePort();
    // Its own process group, as a terminal gives one to `npm start`: a Ctrl-C reaches the whole group.
    const main = spawnMain(
      {
        PATH: process.env.PATH ?? '',
        PORT: String(httpPort),
        WORKERS: '1',
        HOST_ID: 'ctrlc',
        QUEUE_PREFIX: `c${httpPort}`,
        REDIS_DATA_DIR: dir,
        LOG_PRETTY: 'false',
        SHUTDOWN_TIMEOUT_MS: '20000',
      },
      { detached: true },
    );
    const { child, lines } = main;
    children.push(child);
    const groupId = child.pid ?? 0;
    pids.add(groupId);
    try {
      await waitFor(() => logged(lines(), 'primary.ready'), {
        timeoutMs: 60_000,
        what: 'the service on its private redis-server',
      });
      const record = readRecord(dir);
      assert.notEqual(record.port, 6379, 'not the shared default port');
      assert.equal(record.ownerPid, child.pid);
      const identity = await inspectServer('127.0.0.1', record.port);
      assert.equal(
        identity?.dir,
        realpathSync(dir),
        'the server on the recorded port is the one of this data directory',
      );
      assert.equal(identity?.pid, record.pid);
      assert.ok(
        logged(lines(), 'local-redis.started', {
          origin: 'launched',
          redisPid: record.pid,
          url: `redis://127.0.0.1:${record.port}`,
        }),
        'the log says which server it launched, and where',
      );

      const url = `http://127.0.0.1:${httpPort}`;
      assert.equal((await fetch(`${url}/workers`)).status, 200);
      const enqueued = await fetch(`${url}/enqueue-task`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        // The dummy's own example: no DUMMY_JOB_NAMES is needed for it.
        body: JSON.stringify({ jobName: 'videoProcessing', data: { durationMs: 1_000 } }),
      });
      assert.equal(enqueued.status, 202);
      const { jobId } = (await enqueued.json()) as { jobId: string };
      await waitFor(
        async () => ((await (await fetch(`${url}/jobs/${jobId}`)).json()) as { state: string }).state === 'active',
        {
          what: 'the job to be running',
        },
      );

      process.kill(-groupId, 'SIGINT'); // Ctrl-C at the terminal
      assert.equal(await main.exited, 0);
      const log = lines();
      const processStopped = log.findIndex((line) => line.event === 'shutdown.done');
      const redisStopped = log.findIndex((line) => line.event === 'local-redis.stopped');
      assert.ok(
        processStopped !== -1 && redisStopped > processStopped,
        `Redis stopped after the worker process: ${JSON.stringify(log.map((line) => line.event))}`,
      );
      await waitUntilGone(record.pid, record.port, 'the private redis-server to stop with its primary');
      const redisLog = readFileSync(join(dir, 'redis.log'), 'utf8');
      assert.match(redisLog, /is shutting down; stopping redis-server/);
      assert.match(redisLog, /Redis is now ready to exit/, 'a clean shutdown, AOF flushed');
      assert.ok(
        readdirSync(dir, { recursive: true }).some((name) => String(name).includes('.aof')),
        'an AOF in the data directory',
      );

      // The next start launches it again on the recorded port, and the job finished during the
      // drain is there: Redis stayed up for it, and its AOF kept it.
      const next = await startPrivate(dir, { prefix: `c${httpPort}`, hostId: 'ctrlc' });
      try {
        const again = readRecord(dir);
        assert.equal(again.port, record.port);
        assert.notEqual(again.pid, record.pid);
        assert.equal((await readJob(next, jobId)).state, 'completed');
        assert.equal(await next.stop(), 0);
        await waitUntilGone(again.pid, again.port, 'the second server to stop');
      } finally {
        await next.stop('SIGKILL');
      }
    } finally {
      if (child.exitCode === null && child.signalCode === null) process.kill(-groupId, 'SIGKILL');
    }
  });

  test('stops by itself, cleanly, when its primary and workers are SIGKILLed', async () => {
    const dir = dataDir();
    const service = await startPrivate(dir);
    const record = readRecord(dir);
    assert.equal((await service.request('GET', '/workers')).status, 200);
    await killHard(service);
    await waitUntilGone(record.pid, record.port, 'the private redis-server to stop after its primary was killed');
    const redisLog = readFileSync(join(dir, 'redis.log'), 'utf8');
    assert.match(
      redisLog,
      new RegExp(
        `the primary \\(pid ${service.child.pid}\\) went away; stopping redis-server \\(pid ${record.pid}\\) with SIGTERM`,
      ),
    );
    assert.match(redisLog, /Redis is now ready to exit/, 'SIGTERM, not SIGKILL: the AOF was flushed');
    await waitFor(() => !isRunning(record.watchdogPid), {
      timeoutMs: 10_000,
      what: 'the watchdog to exit once the server is gone',
    });
  });

  test('a server left by an earlier run is reused, the log says so, and the new primary watches it', async () => {
    const dir = dataDir();
    const first = await startPrivate(dir);
    const left = readRecord(dir);
    // Its watchdog dies with its primary: nothing stops the server now, as after a crash of the lot.
    process.kill(left.watchdogPid, 'SIGKILL');
    await waitFor(() => !isRunning(left.watchdogPid), { timeoutMs: 10_000, what: 'the watchdog to be gone' });
    await killHard(first);
    assert.equal((await probeRedis('127.0.0.1', left.port)).state, 'pong', 'the server is left running');

    const second = await startPrivate(dir);
    const reused = readRecord(dir);
    assert.ok(
      logged(second.logs, 'local-redis.started', {
        origin: 'reused',
        redisPid: left.pid,
        url: `redis://127.0.0.1:${left.port}`,
      }),
      'the log says it reuses the server left running',
    );
    assert.ok(!logged(second.logs, 'local-redis.started', { origin: 'launched' }), 'it launched none');
    assert.equal(reused.pid, left.pid);
    assert.equal(reused.ownerPid, second.child.pid);
    assert.notEqual(reused.watchdogPid, left.watchdogPid);
    assert.equal((await second.request('GET', '/workers')).status, 200);

    // Now the second primary owns it: killing it stops the server.
    await killHard(second);
    await waitUntilGone(left.pid, left.port, 'the reused server to stop with its new primary');
  });

  test('two starts at once on one data directory: one serves, the other is refused, and one server runs', async () => {
    const dir = dataDir();
    const [a, b] = await Promise.all([
      startPrivate(dir, { waitUntilReady: false }),
      startPrivate(dir, { waitUntilReady: false }),
    ]);
    const serving = await waitFor(
      () => {
        for (const service of [a, b]) if (logged(service.logs, 'primary.ready')) return service;
        return undefined;
      },
      { timeoutMs: 60_000, what: 'one of the two to serve' },
    );
    const refused = serving === a ? b : a;
    assert.equal(await refused.exited, 1, JSON.stringify(refused.logs));
    const record = readRecord(dir);
    const refusal = startFailure(refused.logs);
    assert.equal(refusal.code, 'REDIS_DATA_DIR_IN_USE');
    assert.equal(refusal.ownerPid, serving.child.pid, 'it names the instance that owns the server');
    assert.deepEqual(
      [refusal.redisPid, refusal.port, refusal.dataDir],
      [record.pid, record.port, realpathSync(dir)],
      'and the server, by pid, port and data directory',
    );
    assert.equal(
      refusal.redisUrl,
      `redis://127.0.0.1:${record.port}`,
      'it says what REDIS_URL would share that Redis on purpose',
    );
    assert.equal(record.ownerPid, serving.child.pid);
    assert.equal((await serving.request('GET', '/workers')).status, 200);
    const redisLog = readFileSync(join(dir, 'redis.log'), 'utf8');
    assert.equal(
      redisLog.match(/Ready to accept connections/g)?.length,
      1,
      `one server took the data directory:\n${redisLog}`,
    );
    assert.equal(await serving.stop(), 0);
    await waitUntilGone(record.pid, record.port, 'the server to stop');
  });

  test("a password-protected Redis on the recorded port: start-up says so, with redis-server's last lines, and exits 1", async () => {
    const dir = dataDir();
    const port = await passwordRedis();
    const err = await startOnTakenPort(dir, port);
    const probe = err.probe as { state?: string; reply?: string } | undefined;
    assert.equal(probe?.state, 'answered');
    assert.match(String(probe.reply), /^-NOAUTH/, 'what answers there: a password-protected Redis');
    assert.ok(
      (err.logTail as string[]).some((line) =>
        line.includes(`Could not create server TCP listening socket 127.0.0.1:${port}: bind: Address already in use`),
      ),
      `redis-server's last lines: ${JSON.stringify(err.logTail)}`,
    );
    assert.equal(existsSync(join(dir, 'appendonlydir')), false, 'the failed server wrote no AOF');
  });

  test('a recorded port taken by something that is not Redis: start-up names what answers there and exits 1', async () => {
    const dir = dataDir();
    const port = await listener('HTTP/1.1 400 Bad Request\r\n\r\n');
    const err = await startOnTakenPort(dir, port);
    assert.deepEqual(err.probe, { state: 'answered', reply: 'HTTP/1.1 400 Bad Request' }, 'what answers there');
    assert.equal(err.recordFile, join(realpathSync(dir), 'server.json'), 'the file that recorded the port');
    assert.ok(
      (err.logTail as string[]).some((line) => /Address already in use/.test(line)),
      `redis-server's last lines: ${JSON.stringify(err.logTail)}`,
    );
  });
});

describe('probeRedis: the three answers to PING', () => {
  test('an open Redis answers PONG; a password-protected one, something else, and a closed port are told apart', async () => {
    const open = await startRedis();
    try {
      assert.deepEqual(await probeRedis('127.0.0.1', open.port), { state: 'pong' });
    } finally {
      await open.stop();
    }
    assert.deepEqual(await probeRedis('127.0.0.1', await passwordRedis()), {
      state: 'answered',
      reply: '-NOAUTH Authentication required.',
    });
    assert.deepEqual(await probeRedis('127.0.0.1', await listener('SSH-2.0-OpenSSH_9.6\r\n')), {
      state: 'answered',
      reply: 'SSH-2.0-OpenSSH_9.6',
    });
    const silent = await probeRedis('127.0.0.1', await listener(undefined), 300);
    assert.equal(silent.state, 'silent');
    const closed = await probeRedis('127.0.0.1', await freePort());
    assert.deepEqual(closed, { state: 'silent', reason: 'ECONNREFUSED' });
  });
});
