/**
 * Who a private redis-server belongs to, asked of the server itself. Its data directory (CONFIG GET
 * dir) tells ours from any other Redis on the port, its process id (INFO) is what the watchdog
 * watches, and its owner is the primary holding a connection named `bullpen-owner-<pid>`.
 *
 * Ownership lives in a connection rather than in a pid file because the kernel ends it: a primary
 * that dies, even by SIGKILL, closes its connection and the server is free to be taken over at once,
 * with no stale lock to guess about and no recycled pid to mistake for a live owner. A claim names
 * the connection and lists the clients in one MULTI, so two primaries claiming at once are put in an
 * order by Redis and exactly one of them sees no other owner.
 */
import { Redis } from '../redis/ioredis.js';

const OWNER_PREFIX = 'bullpen-owner-';
const CONNECT_TIMEOUT_MS = 2_000;

export interface Owner {
  readonly clientId: number;
  /** The owning primary's pid, from the connection name. */
  readonly pid: number;
}

export interface ServerIdentity {
  /** The server's data directory, as it resolved it. */
  readonly dir: string;
  readonly pid: number;
  readonly owners: readonly Owner[];
}

function connect(host: string, port: number): Redis {
  return new Redis({
    host,
    port,
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: CONNECT_TIMEOUT_MS,
    // One attempt: the caller decides what to do about a server that is not there.
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
}

/** The owners among the clients of a CLIENT LIST answer. */
export function ownersIn(clientList: string): Owner[] {
  const owners: Owner[] = [];
  for (const line of clientList.split('\n')) {
    const id = /(?:^| )id=(\d+)/.exec(line)?.[1];
    const pid = new RegExp(`(?:^| )name=${OWNER_PREFIX}(\\d+)(?: |$)`).exec(line)?.[1];
    if (id !== undefined && pid !== undefined) owners.push({ clientId: Number(id), pid: Number(pid) });
  }
  return owners;
}

/** What the Redis on the port says about itself; undefined when it cannot be asked (not an open Redis, or gone). */
export async function inspectServer(host: string, port: number): Promise<ServerIdentity | undefined> {
  const client = connect(host, port);
  client.on('error', () => {}); // the outcome is the answer below; a refused connection is not news here
  try {
    await client.connect();
    const [config, info, clients] = await Promise.all([
      client.config('GET', 'dir'),
      client.info('server'),
      client.client('LIST'),
    ]);
    const dir: unknown = Array.isArray(config) ? (config as unknown[])[1] : undefined;
    const pid = /^process_id:(\d+)/m.exec(info)?.[1];
    if (typeof dir !== 'string' || pid === undefined) return undefined;
    return { dir, pid: Number(pid), owners: ownersIn(String(clients)) };
  } catch {
    return undefined;
  } finally {
    client.disconnect();
  }
}

export type Claim =
  /** `connection` is the ownership: keep it open for as long as this primary owns the server. */
  { readonly won: true; readonly connection: Redis } | { readonly won: false; readonly holder: Owner | undefined };

/**
 * Tries to become the server's owner: wins when no other owner is connected. Throws when the server
 * cannot be reached (it went away meanwhile).
 */
export async function claimServer(host: string, port: number, ownerPid: number): Promise<Claim> {
  const connection = connect(host, port);
  connection.on('error', () => {}); // a failed claim throws below; the owner's own handler replaces this one
  try {
    await connection.connect();
    const replies = await connection
      .multi()
      .client('ID')
      .client('SETNAME', `${OWNER_PREFIX}${ownerPid}`)
      .client('LIST')
      .exec();
    const [idReply, , listReply] = replies ?? [];
    if (idReply?.[0] || listReply?.[0] || idReply === undefined || listReply === undefined) {
      throw new Error(
        `the claim on 127.0.0.1:${port} failed: ${String(idReply?.[0] ?? listReply?.[0] ?? 'no answer')}`,
      );
    }
    const ownId = Number(idReply[1]);
    const others = ownersIn(String(listReply[1])).filter((owner) => owner.clientId !== ownId);
    if (others.length === 0) return { won: true, connection };
    connection.disconnect();
    return { won: false, holder: others.sort((a, b) => a.clientId - b.clientId)[0] };
  } catch (error) {
    connection.disconnect();
    throw error;
  }
}
