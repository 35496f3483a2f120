/**
 * Where the service's Redis is: one server (`REDIS_URL`), or a Redis Cluster (`REDIS_CLUSTER_NODES`,
 * a comma-separated list of seed nodes). A seed node is `host:port`, or a URL when the cluster needs
 * a password or TLS (`rediss://:secret@host:port`), with the same credentials for every node, as a
 * cluster has them. Parsed once with the rest of the configuration.
 */
import { z } from 'zod';

export interface ClusterNode {
  readonly host: string;
  readonly port: number;
}

export interface ClusterTarget {
  readonly kind: 'cluster';
  readonly nodes: readonly ClusterNode[];
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly tls: boolean;
}

export type RedisTarget = { readonly kind: 'single'; readonly url: string } | ClusterTarget;

interface Seed extends ClusterNode {
  /** Whether it was given as a URL, which carries the credentials and TLS of every node. */
  readonly fromUrl: boolean;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly tls: boolean;
}

const HOST_PORT = /^(?<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):(?<port>\d{1,5})$/;

function parseSeed(entry: string): Seed | string {
  if (/^rediss?:\/\//.test(entry)) {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      return `"${entry}" is not a valid URL`;
    }
    const port = Number(url.port || 6379);
    if (url.pathname !== '' && url.pathname !== '/') return 'a cluster node URL cannot name a database';
    return {
      host: url.hostname,
      port,
      fromUrl: true,
      username: url.username === '' ? undefined : decodeURIComponent(url.username),
      password: url.password === '' ? undefined : decodeURIComponent(url.password),
      tls: url.protocol === 'rediss:',
    };
  }
  const match = HOST_PORT.exec(entry);
  if (!match?.groups) return `"${entry}" is not host:port or a redis:// URL`;
  const port = Number(match.groups.port);
  if (port < 1 || port > 65535) return `"${entry}" has no valid port`;
  return { host: match.groups.host ?? '', port, fromUrl: false, username: undefined, password: undefined, tls: false };
}

/** `REDIS_CLUSTER_NODES`: one or more seed nodes, all with the same credentials and TLS. */
export const clusterNodesSchema = z.string().transform((value, context): ClusterTarget => {
  const seeds: Seed[] = [];
  for (const entry of value.split(',').map((part) => part.trim())) {
    if (entry === '') continue;
    const seed = parseSeed(entry);
    if (typeof seed === 'string') {
      context.addIssue({ code: 'custom', message: seed });
      return z.NEVER;
    }
    seeds.push(seed);
  }
  const [first] = seeds;
  if (first === undefined) {
    context.addIssue({ code: 'custom', message: 'must list at least one host:port' });
    return z.NEVER;
  }
  // host:port entries take the credentials of the URL entries; two URLs must agree.
  const urls = seeds.filter((seed) => seed.fromUrl);
  const [auth] = urls;
  if (
    urls.some((seed) => seed.username !== auth?.username || seed.password !== auth?.password || seed.tls !== auth?.tls)
  ) {
    context.addIssue({ code: 'custom', message: 'every node must have the same user, password and TLS' });
    return z.NEVER;
  }
  return {
    kind: 'cluster',
    nodes: seeds.map(({ host, port }) => ({ host, port })),
    username: auth?.username,
    password: auth?.password,
    tls: auth?.tls ?? false,
  };
});

/** A target for logs: the single URL without its password, or the cluster's seed nodes. */
export function describeTarget(target: RedisTarget, redact: (url: string) => string): string {
  if (target.kind === 'single') return redact(target.url);
  return `cluster ${target.nodes.map(({ host, port }) => `${host}:${port}`).join(',')}${target.tls ? ' (TLS)' : ''}`;
}
