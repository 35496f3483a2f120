/**
 * The primary's side of the watchdog (see watchdog-process.ts): starts it for a server pid, holding
 * the write end of its stdin for as long as the primary lives, and on shutdown asks it to stop the
 * server and waits until it has. Should the watchdog be gone by then, the primary stops the server
 * itself.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logging/logger.js';
import { terminate, TERMINATE_TIMEOUT_MS } from './terminate.js';

const WATCHDOG_SCRIPT = fileURLToPath(new URL('./watchdog-process.js', import.meta.url));

export interface Watchdog {
  readonly pid: number;
  /** Has the server stopped (SIGTERM, AOF flushed) and resolves once it is gone. */
  stop(): Promise<void>;
}

export async function startWatchdog({
  serverPid,
  logFile,
  logger,
}: {
  serverPid: number;
  logFile: string;
  logger: Logger;
}): Promise<Watchdog> {
  const log = openSync(logFile, 'a');
  const watchdog = (() => {
    try {
      // Its own session (detached), so that a Ctrl-C for the service does not reach it.
      return spawn(process.execPath, [WATCHDOG_SCRIPT, String(serverPid), String(process.pid)], {
        detached: true,
        stdio: ['pipe', log, log],
      });
    } finally {
      closeSync(log);
    }
  })();
  await new Promise<void>((resolveSpawn, rejectSpawn) => {
    watchdog.once('spawn', resolveSpawn);
    watchdog.once('error', rejectSpawn);
  });
  // It must not keep the primary alive, and a pipe that breaks because the watchdog died is reported
  // through its exit below.
  watchdog.unref();
  watchdog.stdin?.on('error', () => {});
  const pid = watchdog.pid ?? 0;
  let stopping = false;
  const exited = new Promise<void>((resolveExit) => watchdog.once('exit', () => resolveExit()));
  watchdog.once('exit', (code, signal) => {
    if (!stopping) {
      logger.warn(
        { event: 'local-redis.watchdog-exited', watchdogPid: pid, code, signal, redisPid: serverPid },
        'the watchdog of the private redis-server exited; the server is not stopped if this primary is killed',
      );
    }
  });

  return {
    pid,
    async stop() {
      stopping = true;
      if (watchdog.exitCode === null && watchdog.signalCode === null) {
        watchdog.stdin?.end('stop\n');
        const timer = setTimeout(() => watchdog.kill('SIGKILL'), TERMINATE_TIMEOUT_MS + 10_000);
        await exited;
        clearTimeout(timer);
        if (watchdog.exitCode === 0) return;
      }
      // No watchdog (it died, or was stuck): stop the server here.
      const outcome = await terminate(serverPid);
      if (outcome !== 'already gone' && outcome !== 'stopped')
        logger.error(
          { event: 'local-redis.stop-failed', redisPid: serverPid, outcome },
          'the private redis-server did not stop on SIGTERM',
        );
    },
  };
}
