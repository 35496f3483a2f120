/**
 * Launching the private redis-server: on loopback, on its data directory's own port, AOF on, in its
 * own session (so that a Ctrl-C for the service does not take Redis away while running jobs finish),
 * its output appended to `redis.log` in the data directory. Start-up is over when the server answers
 * PING and says it is the one just launched (same data directory, same pid); when it exits or never
 * answers instead, the result carries its last log lines, which say why in its own words.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { probeRedis } from './ping.js';
import { inspectServer } from './owner.js';
import { terminate } from './terminate.js';

export const HOST = '127.0.0.1';
export const LOG_FILE = 'redis.log';
/** How long a new server may stay silent before it counts as failed; loading a large AOF (-LOADING) does not count. */
const ANSWER_TIMEOUT_MS = 10_000;
const POLL_MS = 100;
/** The log is started afresh at a launch once it is this large; a run appends only a few dozen lines. */
const LOG_LIMIT_BYTES = 1024 * 1024;
const TAIL_LINES = 12;

export type Launch =
  | { readonly ok: true; readonly pid: number }
  | { readonly ok: false; readonly what: string; readonly logTail: readonly string[] };

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** The last lines written to the log since `offset`. */
export function logTail(logFile: string, offset = 0, lines = TAIL_LINES): string[] {
  try {
    const text = readFileSync(logFile).subarray(offset).toString('utf8');
    return text
      .split('\n')
      .map((line) => line.trimEnd())
      .filter((line) => line !== '')
      .slice(-lines);
  } catch {
    return [];
  }
}

export async function launchServer({
  binary,
  dataDir,
  port,
}: {
  binary: string;
  dataDir: string;
  port: number;
}): Promise<Launch> {
  const logFile = join(dataDir, LOG_FILE);
  if (fileSize(logFile) > LOG_LIMIT_BYTES) truncateSync(logFile, 0);
  const offset = fileSize(logFile);
  const log = openSync(logFile, 'a');
  const child = (() => {
    try {
      return spawn(
        binary,
        [
          '--port',
          String(port),
          '--bind',
          HOST,
          '--dir',
          dataDir,
          '--appendonly',
          'yes',
          '--save',
          '',
          '--daemonize',
          'no',
        ],
        { detached: true, stdio: ['ignore', log, log] },
      );
    } finally {
      closeSync(log);
    }
  })();
  child.unref();
  let spawnError: Error | undefined;
  child.once('error', (error) => (spawnError = error));
  const failed = (what: string): Launch => ({ ok: false, what, logTail: logTail(logFile, offset) });

  let silentSince = Date.now();
  for (;;) {
    await sleep(POLL_MS);
    if (spawnError !== undefined) return failed(`${binary} could not be started: ${spawnError.message}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      return failed(
        `redis-server exited during start-up (${child.exitCode !== null ? `code ${child.exitCode}` : child.signalCode})`,
      );
    }
    const probe = await probeRedis(HOST, port);
    if (probe.state === 'pong') {
      const identity = await inspectServer(HOST, port);
      if (identity?.dir === dataDir && identity.pid === child.pid) return { ok: true, pid: child.pid };
      // Someone else's server: ours cannot bind the port and is about to exit.
    } else if (probe.state === 'answered' && probe.reply.startsWith('-LOADING')) {
      silentSince = Date.now(); // loading its data: slow, but moving
      continue;
    }
    if (Date.now() - silentSince > ANSWER_TIMEOUT_MS) {
      if (child.pid !== undefined) await terminate(child.pid);
      return failed(`redis-server did not answer on ${HOST}:${port} within ${ANSWER_TIMEOUT_MS} ms`);
    }
  }
}
