/**
 * Which port the private redis-server of a data directory uses: the one recorded in its
 * `server.json`, or a free one chosen now and recorded. A server that an earlier version left on 6379
 * for the same directory is stopped first, so that two servers never write one AOF.
 */
import { createServer } from 'node:net';
import { RedisStartError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { HOST } from './launch.js';
import { probeRedis, type PingResult } from './ping.js';
import { inspectServer, type ServerIdentity } from './owner.js';
import { createRecord, readRecord, recordPath, writeRecord } from './record.js';
import { terminate } from './terminate.js';

/** Where earlier versions ran the private server; one found there on our data directory is replaced. */
const LEGACY_PORT = 6379;

/**
 * What answers on the port, and when it is an open Redis (or one loading its data), what it says
 * about itself. The raw probe comes first: it is quick against a port that is silent or not Redis.
 */
export async function examine(port: number): Promise<{ probe: PingResult; identity: ServerIdentity | undefined }> {
  const probe = await probeRedis(HOST, port);
  const askable = probe.state === 'pong' || (probe.state === 'answered' && probe.reply.startsWith('-LOADING'));
  return { probe, identity: askable ? await inspectServer(HOST, port) : undefined };
}

/** The data directory's port: recorded, or chosen now (and an earlier version's server on 6379 replaced). */
export async function recordedPort(dir: string, logger: Logger): Promise<number> {
  const read = readRecord(dir);
  if (read.state === 'found') return read.record.port;
  if (read.state === 'invalid') {
    const port = await freeLoopbackPort();
    logger.warn(
      { event: 'local-redis.record-unreadable', file: recordPath(dir), problem: read.problem, port },
      'the private redis-server record is unreadable; choosing a new port',
    );
    writeRecord(dir, { port });
    return port;
  }
  await replaceLegacyServer(dir, logger);
  return createRecord(dir, await freeLoopbackPort()).port;
}

/**
 * Earlier versions ran the private server on 6379 and did not record it. One found there on this
 * data directory is stopped (SIGTERM: its AOF is flushed) before a server on the new port reads it:
 * two servers must never write one AOF directory.
 */
async function replaceLegacyServer(dir: string, logger: Logger): Promise<void> {
  const { identity: legacy } = await examine(LEGACY_PORT);
  if (legacy?.dir !== dir) return;
  logger.warn(
    { event: 'local-redis.legacy-replaced', redisPid: legacy.pid, port: LEGACY_PORT },
    `replacing the private redis-server an earlier version left on ${HOST}:${LEGACY_PORT} (pid ${legacy.pid}): the private server now has a port of its own`,
  );
  const outcome = await terminate(legacy.pid);
  if (outcome === 'would not die') {
    throw new RedisStartError(
      `the earlier private redis-server on ${HOST}:${LEGACY_PORT} (pid ${legacy.pid}) uses ${dir} and would not stop`,
      LEGACY_PORT,
      [],
    );
  }
}

/**
 * A port nothing listens on now; the server binds it a moment later (a race lost to another program is
 * reported as a taken port).
 */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolvePort(port));
    });
  });
}
