/**
 * Finding a Redis for `npm start` when REDIS_URL is unset: use one already answering on
 * 127.0.0.1:6379, or launch a private `redis-server` from PATH with AOF on and its data under the
 * project, stopped again on shutdown. It runs in its own process group so that a Ctrl-C meant for the
 * service does not take Redis away while running jobs are still finishing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import type { Logger } from '../logging/logger.js';

export interface ResolvedRedis {
  readonly url: string;
  /** Stops the private server, if one was launched. */
  stop(): Promise<void>;
}

export class RedisNotFoundError extends Error {
  override readonly name = 'RedisNotFoundError';
}

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 6379;
const READY_TIMEOUT_MS = 10_000;

/** Sends PING over a raw socket: true only for a Redis that answers +PONG. */
export function pingRedis(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolvePing) => {
    const socket = createConnection({ host, port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolvePing(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.on('error', () => done(false));
  });
}

function findOnPath(command: string, path: string | undefined): string | undefined {
  for (const directory of (path ?? '').split(delimiter)) {
    if (directory === '') continue;
    const candidate = join(directory, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

export interface ResolveRedisOptions {
  readonly configuredUrl: string | undefined;
  readonly dataDir: string;
  /** The PATH to search for redis-server; passed in so that nothing here reads the environment. */
  readonly searchPath: string | undefined;
  readonly logger: Logger;
}

export async function resolveRedis({ configuredUrl, dataDir, searchPath, logger }: ResolveRedisOptions): Promise<ResolvedRedis> {
  const none = async () => {};
  if (configuredUrl !== undefined) return { url: configuredUrl, stop: none };
  const url = `redis://${DEFAULT_HOST}:${DEFAULT_PORT}`;
  if (await pingRedis(DEFAULT_HOST, DEFAULT_PORT)) {
    logger.info({ url }, 'REDIS_URL is unset; using the Redis already answering on the default port');
    return { url, stop: none };
  }
  const binary = findOnPath('redis-server', searchPath);
  if (!binary) {
    throw new RedisNotFoundError(
      'REDIS_URL is unset, nothing answers on 127.0.0.1:6379 and no redis-server is on PATH. ' +
        'Install one (Debian/Ubuntu: `sudo apt-get install redis-server`, macOS: `brew install redis`) ' +
        'or set REDIS_URL=redis://host:port.',
    );
  }
  const directory = resolve(dataDir);
  mkdirSync(directory, { recursive: true });
  const child = spawn(
    binary,
    ['--port', String(DEFAULT_PORT), '--bind', DEFAULT_HOST, '--dir', directory, '--appendonly', 'yes', '--save', ''],
    { detached: true, stdio: 'ignore' },
  );
  await waitForServer(child);
  logger.info({ url, binary, dataDir: directory, childPid: child.pid }, 'REDIS_URL is unset; launched a private redis-server (AOF on)');
  return { url, stop: () => stopServer(child, logger) };
}

async function waitForServer(child: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`redis-server exited during start-up (code ${child.exitCode ?? child.signalCode})`);
    }
    if (await pingRedis(DEFAULT_HOST, DEFAULT_PORT)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server did not answer within ${READY_TIMEOUT_MS} ms`);
}

function stopServer(child: ChildProcess, logger: Logger): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStop) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), READY_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      logger.info('private redis-server stopped');
      resolveStop();
    });
    child.kill('SIGTERM');
  });
}
