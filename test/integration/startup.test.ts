/**
 * Starting the service as `npm start` does: configuration errors stop start-up with a message naming
 * the variable; a HOST other machines reach, without API_KEY, stops it too unless ALLOW_UNAUTHENTICATED
 * says it is meant (then one warning says so); with REDIS_URL unset and no redis-server on PATH, the
 * absence is explained. The private redis-server itself is tested in local-redis.test.ts.
 *
 * Single mode only (test/support/test-redis.ts): the configuration checks and the ready line do not
 * depend on the kind of Redis, and the missing redis-server is the private one of `npm start`.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { portInUse } from '../../src/contracts/process-messages.js';
import { lineOf, linesOf, logged } from '../support/log-lines.js';
import { startRedis } from '../support/redis-server.js';
import { freePort } from '../support/ports.js';
import { spawnMain, type MainProcess } from '../support/main-process.js';
import type { LogLine } from '../support/service.js';
import { waitFor } from '../support/wait.js';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly lines: readonly LogLine[];
}

/** Runs start-up to its end (killed after `timeoutMs`). */
async function runMain(env: Record<string, string>, timeoutMs = 30_000): Promise<Run> {
  const main = spawnMain(env);
  const timer = setTimeout(() => main.child.kill('SIGKILL'), timeoutMs);
  const code = await main.exited;
  clearTimeout(timer);
  return { code, stdout: main.stdout(), stderr: main.stderr(), lines: main.lines() };
}

/** Runs `check` on one process started with `env` on a Redis of its own, once it says it is ready. */
async function whileServing(
  env: Record<string, string>,
  check: (main: MainProcess, url: string) => Promise<void>,
): Promise<void> {
  const redis = await startRedis();
  const port = await freePort();
  const main = spawnMain({
    PATH: process.env.PATH ?? '',
    PORT: String(port),
    WORKERS: '1',
    REDIS_URL: redis.url,
    LOG_PRETTY: 'false',
    ...env,
  });
  try {
    await waitFor(() => logged(main.lines(), 'primary.ready'), { timeoutMs: 30_000, what: 'the ready line' });
    await check(main, `http://127.0.0.1:${port}`);
  } finally {
    main.child.kill('SIGTERM');
    await main.exited;
    await redis.stop();
  }
}

describe('start-up', () => {
  test('an invalid variable stops start-up with a message naming it', async () => {
    const run = await runMain({ PATH: process.env.PATH ?? '', WORKERS: 'many', REDIS_URL: 'redis://127.0.0.1:1' });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /WORKERS/);
    assert.doesNotMatch(run.stderr, /at .*\.js:\d+/, 'no stack trace');
  });

  test('without REDIS_URL and without redis-server on PATH, it exits saying how to get one', async () => {
    const run = await runMain({ PATH: '/nonexistent', PORT: String(await freePort()), LOG_PRETTY: 'false' });
    assert.equal(run.code, 1);
    const fatal = lineOf(run.lines, 'start.failed');
    const err = fatal?.err as { code?: string; install?: Record<string, string>; setting?: string } | undefined;
    assert.equal(err?.code, 'REDIS_SERVER_NOT_FOUND', run.stdout + run.stderr);
    assert.equal(err.install?.['Debian/Ubuntu'], 'sudo apt-get install redis-server', 'the command that installs it');
    assert.equal(err.setting, 'REDIS_URL', 'and the setting that uses an existing Redis instead');
  });

  test('a port already in use stops start-up at once, naming the port and PORT', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const address = blocker.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      const started = Date.now();
      const run = await runMain({
        PATH: process.env.PATH ?? '',
        PORT: String(port),
        REDIS_URL: 'redis://127.0.0.1:1',
        LOG_PRETTY: 'false',
      });
      assert.equal(run.code, 1);
      assert.ok(Date.now() - started < 20_000, 'it did not fork workers again and again');
      const fatal = lineOf(run.lines, 'http.port-in-use', { port, host: '127.0.0.1', level: 60 });
      assert.ok(fatal, run.stdout);
      // In the words every process uses for a taken port, which name PORT (test/unit/process-messages.test.ts).
      assert.equal(fatal.msg, portInUse(port, '127.0.0.1'));
      assert.ok(!logged(run.lines, 'process.forked'), 'no process was forked');
    } finally {
      blocker.close();
    }
  });

  test('a reachable HOST without API_KEY stops start-up at once, in one line that says what to set', async () => {
    const run = await runMain({
      PATH: process.env.PATH ?? '',
      HOST: '0.0.0.0',
      PORT: String(await freePort()),
      REDIS_URL: 'redis://127.0.0.1:1',
      LOG_PRETTY: 'false',
    });
    assert.equal(run.code, 1, run.stdout + run.stderr);
    const refused = linesOf(run.lines, 'auth.key-required');
    assert.equal(refused.length, 1, run.stdout);
    assert.equal(refused[0]?.level, 60);
    assert.equal(refused[0]?.host, '0.0.0.0');
    assert.equal(refused[0]?.setting, 'API_KEY');
    assert.match(String(refused[0]?.msg), /ALLOW_UNAUTHENTICATED=true/, 'it names the way out too');
    assert.ok(!logged(run.lines, 'process.forked'), 'nothing was started');
  });

  test('with ALLOW_UNAUTHENTICATED=true it serves without a key, and one warning says it is on purpose', async () => {
    await whileServing({ HOST: '0.0.0.0', ALLOW_UNAUTHENTICATED: 'true', HOST_ID: 'open' }, async (main, url) => {
      const warned = linesOf(main.lines(), 'auth.unauthenticated');
      assert.equal(warned.length, 1, main.stdout());
      assert.equal(warned[0]?.level, 40);
      assert.equal(warned[0]?.setting, 'ALLOW_UNAUTHENTICATED');
      assert.equal((await fetch(`${url}/workers`)).status, 200, 'served without a key');
    });
  });

  test('with API_KEY, a reachable HOST starts quietly and asks for the key', async () => {
    await whileServing(
      { HOST: '0.0.0.0', API_KEY: 'startup-test-key-0123456789', HOST_ID: 'keyed' },
      async (main, url) => {
        assert.deepEqual(
          main.lines().filter((line) => line.event?.startsWith('auth.')),
          [],
          'no word about keys: there is one',
        );
        assert.equal((await fetch(`${url}/workers`)).status, 401);
        assert.equal((await fetch(`${url}/healthz`)).status, 200, 'health stays open to orchestrators');
      },
    );
  });

  test('one line says when the whole cluster serves: the URLs of the docs, dashboard and metrics, and the key it needs (never the key itself); no log line repeats a field', async () => {
    const key = 'ready-line-secret-key-0123456789';
    await whileServing({ WORKERS: '2', HOST_ID: 'ready', API_KEY: key }, async (main, url) => {
      const lines = main
        .stdout()
        .split('\n')
        .filter((line) => line !== '');
      const ready = linesOf(main.lines(), 'primary.ready');
      assert.equal(ready.length, 1);
      const [parsed] = ready as [LogLine];
      assert.equal(parsed.url, url);
      assert.equal(parsed.processes, 2);
      assert.equal(parsed.docs, `${url}/docs`);
      assert.equal(parsed.adminQueues, `${url}/admin/queues`);
      assert.equal(parsed.metrics, `${url}/metrics`);
      assert.equal(parsed.keyRequired, true);
      assert.equal(parsed.authorization, 'Authorization: Bearer $API_KEY');
      assert.deepEqual(parsed.openPaths, ['/livez', '/healthz']);
      assert.equal((await fetch(`${url}/healthz`)).status, 200, 'the URL it gives serves');
      // Each URL it names serves, with the key as the line says to send it, and needs it.
      const bearer = { authorization: `Bearer ${key}` };
      for (const page of [parsed.docs, parsed.adminQueues, parsed.metrics]) {
        assert.equal((await fetch(String(page), { headers: bearer })).status, 200, String(page));
        assert.equal((await fetch(String(page))).status, 401, `${String(page)} without the key`);
      }
      assert.ok(!main.stdout().includes(key) && !main.stderr().includes(key), 'the key is never printed');
      for (const line of lines) {
        const keys = [...line.matchAll(/"([A-Za-z_]+)":/g)].map((match) => match[1]);
        const top = JSON.parse(line) as Record<string, unknown>;
        assert.equal(
          keys.filter((name) => name === 'pid').length <= 1 && Object.keys(top).length > 0,
          true,
          `a repeated key in ${line}`,
        );
      }
    });
  });
});
