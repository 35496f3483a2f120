/**
 * ioredis's Sentinel connector with failover detection that cannot end a connection for good.
 *
 * ioredis's own detector (`failoverDetector: true`) disconnects the connector when a sentinel
 * announces `+switch-master`. A master that dies leaves every connection reconnecting until a
 * replica is promoted; if the announcement arrives while a reconnect is still asking the sentinels
 * for the master, that reconnect rejects with "Connection is closed." and ioredis ends the
 * connection: every command fails from then on, until the process restarts. The sentinels answer
 * slowly on a loaded machine, which widens that window (seen in CI: one process answered 503 for a
 * minute after the promotion; test/faults/sentinel-switch.test.ts makes the slow answer happen).
 *
 * Here the announcement only closes the socket the connection has open to another master, which
 * ioredis then reconnects as after any broken socket; a reconnect under way is left alone, and asks
 * the sentinels again if it reaches the old master. BullMQ's duplicates of a connection copy its
 * options, and so this connector with them.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Redis, SentinelConnector, type RedisOptions } from './ioredis.js';

type Stream = Socket | TLSSocket;
type ErrorEmitter = Parameters<SentinelConnector['connect']>[0];
type Options = ConstructorParameters<typeof SentinelConnector>[0];

/** The channel on which sentinels announce a promotion: `<master name> <old ip> <old port> <new ip> <new port>`. */
export const SWITCH_CHANNEL = '+switch-master';

/** Where a `+switch-master` message says the named master now is, or undefined for another master's. */
export function switchedTo(message: string, master: string): string | undefined {
  const [name, , , ip, port] = message.split(' ');
  return name === master && ip !== undefined && port !== undefined ? `${ip}:${port}` : undefined;
}

export class SwitchSafeSentinelConnector extends SentinelConnector {
  private readonly watchOptions: Options;

  /** ioredis constructs its connector with the connection's options (its `ConnectorConstructor`). */
  constructor(options: unknown) {
    const given = options as Options;
    // ioredis's detector is the one that races a reconnect; this class watches instead.
    super({ ...given, failoverDetector: false });
    this.watchOptions = given;
  }

  override async connect(emitter: ErrorEmitter): Promise<Stream> {
    const stream = await super.connect(emitter);
    const tls = this.watchOptions.enableTLSForSentinelMode === true && this.watchOptions.tls !== undefined;
    stream.once(tls ? 'secureConnect' : 'connect', () => this.watch(stream));
    return stream;
  }

  /** For as long as `stream` is open: a promotion elsewhere closes it, and ioredis reconnects. */
  private watch(stream: Stream): void {
    const { sentinels = [], name = '' } = this.watchOptions;
    const clients = sentinels.slice(0, this.watchOptions.sentinelMaxConnections ?? 10).map((sentinel) => {
      const client = new Redis({
        host: sentinel.host ?? 'localhost',
        port: sentinel.port ?? 26379,
        username: this.watchOptions.sentinelUsername,
        password: this.watchOptions.sentinelPassword,
        ...(this.watchOptions.sentinelTLS === undefined ? {} : { tls: this.watchOptions.sentinelTLS }),
        connectTimeout: this.watchOptions.connectTimeout,
        enableReadyCheck: false,
        // ioredis's setting for a detector's sentinel connections: one that is away is tried each minute.
        retryStrategy: this.watchOptions.sentinelReconnectStrategy,
      } satisfies RedisOptions);
      // A sentinel that is away is retried quietly; the others still announce.
      client.on('error', () => {});
      client.on('message', (channel: string, message: string) => {
        const to = channel === SWITCH_CHANNEL ? switchedTo(message, name) : undefined;
        if (to !== undefined && `${stream.remoteAddress}:${stream.remotePort}` !== to) stream.destroy();
      });
      client.subscribe(SWITCH_CHANNEL).catch(() => {});
      return client;
    });
    stream.once('close', () => {
      for (const client of clients) client.disconnect();
    });
  }
}
