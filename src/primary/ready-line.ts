/**
 * The primary's one "ready" line, once every process serves: where the service answers and where its
 * pages are (the API docs, the queue dashboard, the metrics), as full URLs a person can open, and
 * whether requests need the key and how to send it. The key itself is never printed: only the name of
 * the variable that holds it.
 *
 * Its fields are for tests and log searches (the `event` is `primary.ready`), its message for people.
 */
import type { Config } from '../config/config.js';

/** How a request presents the key, as the line says it; `$API_KEY` is the variable, never its value. */
export const BEARER_HEADER = 'Authorization: Bearer $API_KEY';

export interface ReadyFields {
  readonly event: 'primary.ready';
  readonly processes: number;
  readonly hostId: string;
  /** Where the service answers, e.g. `http://127.0.0.1:3000`. */
  readonly url: string;
  readonly docs: string;
  /** The queue dashboard; null with ADMIN_UI=false. */
  readonly adminQueues: string | null;
  readonly metrics: string;
  /** Whether requests need the key (API_KEY is set). */
  readonly keyRequired: boolean;
  /** The header that carries the key; null when no key is needed. */
  readonly authorization: string | null;
  /** The paths open without the key, when one is needed. */
  readonly openPaths: readonly string[];
}

/** A host to put in a URL a person can open: a wildcard address becomes loopback, an IPv6 one is bracketed. */
function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

export function readyLine(config: Config): { readonly fields: ReadyFields; readonly message: string } {
  const url = `http://${urlHost(config.host)}:${config.port}`;
  const keyRequired = config.apiKey !== undefined;
  const fields: ReadyFields = {
    event: 'primary.ready',
    processes: config.processes,
    hostId: config.hostId,
    url,
    docs: `${url}/docs`,
    adminQueues: config.adminUi ? `${url}/admin/queues` : null,
    metrics: `${url}/metrics`,
    keyRequired,
    authorization: keyRequired ? BEARER_HEADER : null,
    openPaths: keyRequired ? ['/livez', '/healthz', ...(config.metricsPublic ? ['/metrics'] : [])] : [],
  };
  const pages = [
    `API docs ${fields.docs}`,
    ...(fields.adminQueues === null ? [] : [`queue dashboard ${fields.adminQueues}`]),
    `metrics ${fields.metrics}`,
  ];
  const auth = keyRequired
    ? `requests need "${BEARER_HEADER}" (all but ${fields.openPaths.join(' and ')}); ` +
      'in a browser: any user name, the key as the password'
    : 'no key needed (API_KEY is not set)';
  return {
    fields,
    message: `ready: ${config.processes} processes serving on ${url}; try ${url}/workers; ${pages.join(', ')}; ${auth}`,
  };
}
