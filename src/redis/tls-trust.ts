/**
 * Whether this process trusts the TLS certificate of its Redis (`rediss://`), asked once by the
 * primary before it forks a worker. A certificate that does not verify (signed by a private CA that
 * NODE_EXTRA_CA_CERTS does not name, or for a name other than the one the service reaches it by) is
 * a mistake of configuration that no retry cures. Yet ioredis takes it for a Redis that is away: its
 * connections retry for ever, each worker gives up after its ready time-out and is forked again, and
 * on a Redis Cluster not even the reason is logged (its slot refresh says only "Connection is
 * closed."). Start-up therefore stops at once and says why. A Redis that does not answer at all is
 * not judged here: the workers wait for it, as without TLS.
 *
 * The handshake is made as ioredis makes it (host and port as configured, Node's trusted CAs, the
 * certificate checked against that host name) and nothing is sent over it.
 */
import { checkServerIdentity, connect, type PeerCertificate } from 'node:tls';
import type { RedisTarget } from './target.js';

/** Long enough for a handshake with a distant, busy Redis; a silent one is the workers' to wait for. */
const HANDSHAKE_TIMEOUT_MS = 5_000;

export interface TlsEndpoint {
  readonly host: string;
  readonly port: number;
}

/** Where the service speaks TLS: the host of a `rediss://` URL, or every seed of a TLS cluster. */
export function tlsEndpoints(target: RedisTarget): TlsEndpoint[] {
  if (target.kind === 'cluster') return target.tls ? [...target.nodes] : [];
  let url: URL;
  try {
    url = new URL(target.url);
  } catch {
    return []; // ioredis says what is wrong with it
  }
  if (url.protocol !== 'rediss:') return [];
  // Where ioredis goes: localhost when the URL names no host.
  const host = url.hostname === '' ? 'localhost' : url.hostname.replace(/^\[|\]$/g, '');
  return [{ host, port: Number(url.port || 6379) }];
}

/** Why the certificate that `endpoint` presents is not trusted; undefined when it is, or when nothing answered. */
export function certificateProblem(
  { host, port }: TlsEndpoint,
  timeoutMs = HANDSHAKE_TIMEOUT_MS,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    // Not rejected at the handshake, so that a refusal is told apart from a network error; the
    // socket is closed before a byte is sent, whatever the verdict.
    const socket = connect({ host, port, rejectUnauthorized: false });
    socket.setTimeout(timeoutMs);
    const done = (problem: string | undefined) => {
      socket.destroy();
      resolve(problem);
    };
    socket.once('secureConnect', () => {
      if (socket.authorized) return done(undefined);
      // A string code at run time (SELF_SIGNED_CERT_IN_CHAIN, ERR_TLS_CERT_ALTNAME_INVALID, ...).
      const code = String(socket.authorizationError);
      const certificate: PeerCertificate = socket.getPeerCertificate();
      const mismatch = code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? checkServerIdentity(host, certificate) : undefined;
      done(mismatch === undefined ? code : `${code}: ${mismatch.message}`);
    });
    socket.once('timeout', () => done(undefined));
    // Not `once`: a socket may say more than one error, and an unheard one would crash the primary.
    socket.on('error', () => done(undefined));
  });
}

/**
 * What start-up says when a TLS endpoint of `target` presents a certificate this process does not
 * trust; undefined when every one that answers is trusted (or the target has no TLS).
 */
export async function untrustedRedis(target: RedisTarget, timeoutMs?: number): Promise<string | undefined> {
  const endpoints = tlsEndpoints(target);
  const problems = await Promise.all(endpoints.map((endpoint) => certificateProblem(endpoint, timeoutMs)));
  const index = problems.findIndex((problem) => problem !== undefined);
  const endpoint = endpoints[index];
  if (endpoint === undefined) return undefined;
  return (
    `the TLS certificate of Redis at ${endpoint.host}:${endpoint.port} is not trusted (${problems[index]}). ` +
    'If a private CA signed it, give that CA in NODE_EXTRA_CA_CERTS (a PEM file); ' +
    'name each server as its certificate does'
  );
}
