/**
 * Finding a Redis for `npm start` when REDIS_URL is unset: the private redis-server of the data
 * directory (REDIS_DATA_DIR), never whatever happens to answer on the shared default port, so that
 * two instances cannot end up on one Redis by accident. Set REDIS_URL to use an existing Redis.
 *
 * The private server listens on loopback, on a port of its own chosen once and kept in
 * `server.json` in the data directory (see server-record.ts), with AOF on. It is owned by the
 * primary that holds an owner connection to it (see private-owner.ts) and watched by a watchdog
 * process that stops it, with SIGTERM so that the AOF is flushed, when that primary goes away, even
 * by SIGKILL (see watchdog-process.ts). Server and watchdog run in their own session, so a Ctrl-C for
 * the service does not take Redis away while running jobs finish.
 *
 * At start-up a server already running on the data directory's port is taken over when nobody owns
 * it (left by an earlier run whose watchdog was killed too), and refused when another live primary
 * owns it. A server that cannot start says why: what answers on its port, and its last log lines.
 */
import { mkdirSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisDataDirInUseError, RedisNotFoundError, RedisStartError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { findOnPath } from '../platform/find-on-path.js';
import { HOST, launchServer, LOG_FILE, type Launch } from './launch.js';
import { describeProbe, type PingResult } from './ping.js';
import { claimServer, type Claim, type Owner } from './owner.js';
import { recordPath, writeRecord } from './record.js';
import { examine, recordedPort } from './port.js';
import { startWatchdog } from './watchdog.js';

// Tests and test support import the ping from here, as before it had a module of its own.
export { pingRedis, probeRedis, type PingResult } from './ping.js';

export interface ResolvedRedis {
  readonly url: string;
  /** Stops the private server, if this primary owns one; resolves once it is gone. */
  stop(): Promise<void>;
}

export interface PrivateRedisOptions {
  readonly dataDir: string;
  /** The PATH to search for redis-server; passed in so that nothing here reads the environment. */
  readonly searchPath: string | undefined;
  readonly logger: Logger;
}

/** The command that installs redis-server, by system, for the start-up that finds none. */
const INSTALL_REDIS_SERVER: Readonly<Record<string, string>> = Object.freeze({
  'Debian/Ubuntu': 'sudo apt-get install redis-server',
  macOS: 'brew install redis',
});

/** How long a server owned by another primary may take to be let go (that primary stopping) before start-up refuses. */
const OWNER_WAIT_MS = 2_000;
const CLAIM_RETRY_MS = 200;
/** Rounds of find-or-launch: a server going away, a concurrent start or a port being let go each cost one. */
const MAX_ROUNDS = 5;
/**
 * When the port is held but nobody answers on it (a server shutting down), how long to wait before trying
 * again, and how often.
 */
const PORT_HELD_RETRY_MS = 1_000;
const PORT_HELD_RETRIES = 2;

/** Finds or launches the data directory's private redis-server and takes ownership of it. */
export async function launchPrivateRedis({ dataDir, searchPath, logger }: PrivateRedisOptions): Promise<ResolvedRedis> {
  const binary = findOnPath('redis-server', searchPath);
  if (binary === undefined) {
    const commands = Object.entries(INSTALL_REDIS_SERVER).map(([system, command]) => `${system}: \`${command}\``);
    throw new RedisNotFoundError(
      'REDIS_URL is unset and no redis-server is on PATH to launch a private one. ' +
        `Install it (${commands.join(', ')}) or set REDIS_URL=redis://host:port to use an existing Redis.`,
      INSTALL_REDIS_SERVER,
    );
  }
  mkdirSync(resolve(dataDir), { recursive: true });
  // The path the server reports for itself (CONFIG GET dir), symbolic links resolved.
  const dir = realpathSync(resolve(dataDir));
  const port = await recordedPort(dir, logger);

  let raced = false;
  let heldRetries = 0;
  for (let round = 1; round <= MAX_ROUNDS; round += 1) {
    const { identity: running } = await examine(port);
    if (running?.dir === dir) {
      const how = raced
        ? 'took over the private redis-server another start launched a moment ago'
        : 'reusing the private redis-server left by an earlier run';
      const owned = await own({
        dir,
        port,
        serverPid: running.pid,
        logger,
        origin: raced ? 'taken-over' : 'reused',
        describe: (pid) => `${how} (pid ${pid}, port ${port})`,
      });
      if (owned !== undefined) return owned;
      continue; // it went away while we waited for its owner: launch one
    }

    const launch = await launchServer({ binary, dataDir: dir, port });
    if (launch.ok) {
      const owned = await own({
        dir,
        port,
        serverPid: launch.pid,
        logger,
        origin: 'launched',
        describe: (pid) =>
          `REDIS_URL is unset; launched a private redis-server (pid ${pid}) on ${HOST}:${port}, AOF on, data in ${dir}`,
      });
      if (owned !== undefined) return owned;
      continue;
    }

    const { probe, identity: after } = await examine(port);
    if (after?.dir === dir) {
      raced = true; // another start on this directory got the port first: its server is ours to share or wait for
      continue;
    }
    if (probe.state === 'silent' && portHeld(launch) && heldRetries < PORT_HELD_RETRIES && round < MAX_ROUNDS) {
      heldRetries += 1;
      await sleep(PORT_HELD_RETRY_MS);
      continue;
    }
    throw startError({ dir, port, launch, probe, foreignDir: after?.dir });
  }
  throw new RedisStartError(
    `could not start or reuse the private redis-server on ${HOST}:${port} after ${MAX_ROUNDS} attempts`,
    port,
    [],
    { recordFile: recordPath(dir) },
  );
}

function portHeld(launch: Launch): boolean {
  return !launch.ok && launch.logTail.some((line) => /address already in use/i.test(line));
}

/**
 * Where the server that start-up owns came from: launched now, left by an earlier run, or launched a
 * moment ago by another start on the same data directory.
 */
type ServerOrigin = 'launched' | 'reused' | 'taken-over';

/**
 * Becomes the server's owner, starts its watchdog and records it. Undefined when the server went
 * away meanwhile; throws when another live primary keeps owning it.
 */
async function own({
  dir,
  port,
  serverPid,
  logger,
  origin,
  describe,
}: {
  dir: string;
  port: number;
  serverPid: number;
  logger: Logger;
  origin: ServerOrigin;
  describe: (pid: number) => string;
}): Promise<ResolvedRedis | undefined> {
  const deadline = Date.now() + OWNER_WAIT_MS;
  let holder: Owner | undefined;
  for (;;) {
    let claim: Claim;
    try {
      claim = await claimServer(HOST, port, process.pid);
    } catch {
      return undefined;
    }
    if (claim.won) {
      const connection = claim.connection;
      const watchdog = await startWatchdog({ serverPid, logFile: join(dir, LOG_FILE), logger });
      writeRecord(dir, { port, pid: serverPid, ownerPid: process.pid, watchdogPid: watchdog.pid });
      const url = `redis://${HOST}:${port}`;
      logger.info(
        { event: 'local-redis.started', origin, url, redisPid: serverPid, watchdogPid: watchdog.pid, dataDir: dir },
        `${describe(serverPid)}; it stops when this primary stops or dies. Set REDIS_URL to use an existing Redis instead`,
      );
      let stopping = false;
      connection.once('end', () => {
        if (!stopping)
          logger.error(
            { event: 'local-redis.gone', redisPid: serverPid, port },
            'the private redis-server went away; the processes retry until a Redis answers again',
          );
      });
      return {
        url,
        async stop() {
          stopping = true;
          await watchdog.stop();
          connection.disconnect();
          logger.info({ event: 'local-redis.stopped', redisPid: serverPid, port }, 'private redis-server stopped');
        },
      };
    }
    holder = claim.holder;
    if (Date.now() > deadline) break;
    await sleep(CLAIM_RETRY_MS);
  }
  const who = holder !== undefined ? `another bullpen (pid ${holder.pid})` : 'another bullpen';
  throw new RedisDataDirInUseError(
    `${who} is using the private redis-server of ${dir} (pid ${serverPid}, port ${port}). ` +
      'Wait for it to stop, give this instance its own REDIS_DATA_DIR, ' +
      `or set REDIS_URL=redis://${HOST}:${port} to share that Redis on purpose.`,
    holder?.pid,
    port,
    { redisPid: serverPid, dataDir: dir, redisUrl: `redis://${HOST}:${port}` },
  );
}

function startError({
  dir,
  port,
  launch,
  probe,
  foreignDir,
}: {
  dir: string;
  port: number;
  launch: Launch & { ok: false };
  probe: PingResult;
  foreignDir: string | undefined;
}): RedisStartError {
  let cause: string;
  switch (probe.state) {
    case 'pong':
      cause = `the port is taken by another Redis${foreignDir !== undefined ? `, whose data directory is ${foreignDir}` : ''} (${launch.what})`;
      break;
    case 'answered':
      cause = `the port is taken: ${describeProbe(probe)} (${launch.what})`;
      break;
    case 'silent':
      cause = portHeld(launch)
        ? `the port is taken by a process that does not answer PING (${launch.what})`
        : launch.what;
  }
  const advice =
    probe.state !== 'silent' || portHeld(launch)
      ? `Free the port, delete ${recordPath(dir)} so that the next start picks a new one, or set REDIS_URL to use an existing Redis.`
      : 'Set REDIS_URL to use an existing Redis instead.';
  const lines = launch.logTail.length > 0 ? launch.logTail.map((line) => `  ${line}`).join('\n') : '  (nothing)';
  return new RedisStartError(
    `could not start the private redis-server on ${HOST}:${port}, the port recorded in ${recordPath(dir)}: ${cause}. ${advice}\n` +
      `redis-server's last lines (${join(dir, LOG_FILE)}):\n${lines}`,
    port,
    launch.logTail,
    { probe, recordFile: recordPath(dir) },
  );
}
