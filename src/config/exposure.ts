/**
 * Who can reach the service without a key. The shipped image listens on every interface, so a service
 * started there without API_KEY would serve the whole API, the queue dashboard and the docs to anyone
 * who finds the port, and nothing would say so. Here that is refused unless the operator says it is
 * meant (ALLOW_UNAUTHENTICATED); on loopback, where only the machine itself reaches it, it is the quiet
 * default of `npm start`.
 */
import { isIP } from 'node:net';
import type { Config } from './config.js';

export type Exposure =
  /** API_KEY is set: every route but /healthz (and /metrics when public) needs it. */
  | 'keyed'
  /** No key, on a loopback address: only this machine can connect. */
  | 'loopback'
  /** No key, reachable from elsewhere, and ALLOW_UNAUTHENTICATED says that is meant. */
  | 'open-on-purpose'
  /** No key, reachable from elsewhere, and nothing says it is meant: start-up stops. */
  | 'refused';

/**
 * Whether only this machine can connect to `host`. A name other than `localhost` counts as reachable:
 * what it resolves to is not known here, and a wrong guess would open the service.
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) return bare === '::1' || /^::ffff:127\./.test(bare);
  return false;
}

export function exposureOf(config: Pick<Config, 'host' | 'apiKey' | 'allowUnauthenticated'>): Exposure {
  if (config.apiKey !== undefined) return 'keyed';
  if (isLoopbackHost(config.host)) return 'loopback';
  return config.allowUnauthenticated ? 'open-on-purpose' : 'refused';
}
