/**
 * Redis URLs for logs: the password never leaves the process. A leaf module, so that logging a URL
 * loads no Redis client.
 */

/** The URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'redis://(unparseable)';
  }
}
