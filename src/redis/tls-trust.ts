/**
 * Whether this process trusts the TLS certificate of its Redis (`rediss://`), asked once by the
 * primary before it forks a process. A certificate that does not verify (signed by a private CA that
 * NODE_EXTRA_CA_CERTS does not name, or for a name other than the one the service reaches it by) is
 * a mistake of configuration that no retry cures. Yet ioredis takes it for a Redis that is away: its
 * connections retry for ever, each process gives up after its ready time-out and is forked again, and
 * on a Redis Cluster not even the reason is logged (its slot refresh says only "Connection is
 * closed."). Start-up therefore stops at once and says why. A Redis that does not answer at all is
 * not judged here: the processes wait for it, as without TLS. A port that takes the connection but
 * not the handshake (a Redis without TLS, given as rediss://) looks the same to ioredis; it is only
 * warned about, since a Redis slow to answer cannot be told apart from it.
 *
 * The handshake is made as ioredis makes it (host and port as configured, Node's trusted CAs, the
 * certificate checked against that host name) and nothing is sent over it.
 */
import { checkServerIdentity, connect, type PeerCertificate } from 'node:tls';
import type { RedisTarget } from './target.js';

/** Long enough for a handshake with a distant, busy Redis; a silent one is the processes' to wait for. */
const HANDSHAKE_TIMEOUT_MS = 5_000;

export interface TlsEndpoint {
  readonly host: string;
  readonly port: number;
}

/** Where the service speaks TLS: the host of a `rediss://` URL, every seed of a TLS cluster, or every TLS sentinel. */
export function tlsEndpoints(target: RedisTarget): TlsEndpoint[] {
  if (target.kind === 'cluster') return target.tls ? [...target.nodes] : [];
  // The sentinels, which every connection asks first; the master they name is checked by the connections.
  if (target.kind === 'sentinel') return target.tls ? [...target.sentinels] : [];
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

/** What one handshake found. */
export type TlsVerdict =
  | { readonly kind: 'trusted' }
  /** `code` is Node's (SELF_SIGNED_CERT_IN_CHAIN, ERR_TLS_CERT_ALTNAME_INVALID, ...); `detail` says more. */
  | { readonly kind: 'untrusted'; readonly code: string; readonly detail: string | undefined }
  /** The port took the connection but never answered the handshake: most likely Redis without TLS. */
  | { readonly kind: 'no-handshake' }
  /** Nothing to judge: the port refused, or the network failed. The processes wait for it. */
  | { readonly kind: 'unreachable' };

/** Makes one TLS handshake with `endpoint`, sends nothing over it, and says what it found. */
export function checkEndpoint({ host, port }: TlsEndpoint, timeoutMs = HANDSHAKE_TIMEOUT_MS): Promise<TlsVerdict> {
  return new Promise((resolve) => {
    // Not rejected at the handshake, so that a refusal is told apart from a network error; the
    // socket is closed before a byte is sent, whatever the verdict.
    const socket = connect({ host, port, rejectUnauthorized: false });
    let connected = false;
    socket.once('connect', () => (connected = true));
    socket.setTimeout(timeoutMs);
    const done = (verdict: TlsVerdict) => {
      socket.destroy();
      resolve(verdict);
    };
    socket.once('secureConnect', () => {
      if (socket.authorized) return done({ kind: 'trusted' });
      // A string code at run time (SELF_SIGNED_CERT_IN_CHAIN, ERR_TLS_CERT_ALTNAME_INVALID, ...).
      const code = String(socket.authorizationError);
      const certificate: PeerCertificate = socket.getPeerCertificate();
      const mismatch = code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? checkServerIdentity(host, certificate) : undefined;
      done({ kind: 'untrusted', code, detail: mismatch?.message });
    });
    // A plain Redis reads the client's hello as the start of a command and waits for the rest.
    socket.once('timeout', () => done({ kind: connected ? 'no-handshake' : 'unreachable' }));
    // Not `once`: a socket may say more than one error, and an unheard one would crash the primary.
    socket.on('error', () => done({ kind: 'unreachable' }));
  });
}

/** A problem found, for the log line: what it says to a person, and the same as fields. */
export interface TlsProblem {
  readonly message: string;
  /** `host:port` of the server it concerns. */
  readonly endpoint: string;
  /** Node's code for an untrusted certificate; undefined for a server that did not answer the handshake. */
  readonly code?: string;
  readonly detail?: string;
  /** What to change: `NODE_EXTRA_CA_CERTS` (the trusted CAs) or `redis://` (no TLS). */
  readonly fix: 'NODE_EXTRA_CA_CERTS' | 'redis://';
}

export interface TlsCheck {
  /** A certificate this process does not trust: start-up must stop, with this reason. */
  readonly fatal?: TlsProblem;
  /** A port that took the connection but not the handshake: said, and then waited for as usual. */
  readonly warning?: TlsProblem;
}

/** Checks every TLS endpoint of `target` (none without TLS) at once. */
export async function checkTls(target: RedisTarget, timeoutMs?: number): Promise<TlsCheck> {
  const endpoints = tlsEndpoints(target);
  const verdicts = await Promise.all(endpoints.map((endpoint) => checkEndpoint(endpoint, timeoutMs)));
  const where = (index: number) => `${endpoints[index]?.host}:${endpoints[index]?.port}`;
  const untrusted = verdicts.findIndex((verdict) => verdict.kind === 'untrusted');
  const verdict = verdicts[untrusted];
  if (verdict?.kind === 'untrusted') {
    const reason = verdict.detail === undefined ? verdict.code : `${verdict.code}: ${verdict.detail}`;
    return {
      fatal: {
        message:
          `the TLS certificate of Redis at ${where(untrusted)} is not trusted (${reason}). ` +
          'If a private CA signed it, give that CA in NODE_EXTRA_CA_CERTS (a PEM file); ' +
          'name each server as its certificate does',
        endpoint: where(untrusted),
        code: verdict.code,
        ...(verdict.detail === undefined ? {} : { detail: verdict.detail }),
        fix: 'NODE_EXTRA_CA_CERTS',
      },
    };
  }
  const silent = verdicts.findIndex((each) => each.kind === 'no-handshake');
  if (silent === -1) return {};
  return {
    warning: {
      message:
        `Redis at ${where(silent)} took the connection but did not answer the TLS handshake: ` +
        'if it does not speak TLS, use redis:// instead of rediss://',
      endpoint: where(silent),
      fix: 'redis://',
    },
  };
}
