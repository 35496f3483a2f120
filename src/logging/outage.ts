/**
 * What the log says while Redis is away. Every connection, and every BullMQ consumer on one, reports
 * an error on each reconnect attempt (every 2 s at most): the first error of an outage is logged at
 * once, the rest at most once per interval, and one line says when the connection is back. A line
 * names the error by its code and message: a lost connection's stack points into the socket code and
 * says nothing, and a multi-line stack per attempt buries the lines that do.
 */
import type { Logger } from './logger.js';

/** At most one error line per connection (or consumer) in this long. */
export const OUTAGE_LOG_INTERVAL_MS = 5_000;

export interface OutageReport {
  /** An error of the connection: logged if it is the first since the last restore, or if the interval has passed. */
  error(error: unknown): void;
  /** The connection is ready again: one line, if errors were logged since it last was. */
  restored(): void;
}

export interface OutageLines {
  readonly logger: Logger;
  readonly level: 'warn' | 'error';
  /** What every line says it is about: `{ connection: 'command' }`, `{ consumer: 'queue consumer' }`. */
  readonly about: Readonly<Record<string, string>>;
  readonly error: { readonly event: string; readonly msg: string };
  readonly restored: { readonly event: string; readonly msg: string };
  readonly intervalMs?: number;
}

export function reportOutage({
  logger,
  level,
  about,
  error: errorLine,
  restored: restoredLine,
  intervalMs = OUTAGE_LOG_INTERVAL_MS,
}: OutageLines): OutageReport {
  let outage: { since: number; errors: number; loggedAt: number; suppressed: number } | undefined;
  return {
    error(error) {
      const now = Date.now();
      outage ??= { since: now, errors: 0, loggedAt: Number.NEGATIVE_INFINITY, suppressed: 0 };
      outage.errors += 1;
      if (now - outage.loggedAt < intervalMs) {
        outage.suppressed += 1;
        return;
      }
      logger[level](
        { event: errorLine.event, ...about, ...describeError(error), suppressed: outage.suppressed },
        errorLine.msg,
      );
      outage.loggedAt = now;
      outage.suppressed = 0;
    },
    restored() {
      if (outage === undefined) return;
      logger.info(
        { event: restoredLine.event, ...about, downMs: Date.now() - outage.since, errors: outage.errors },
        restoredLine.msg,
      );
      outage = undefined;
    },
  };
}

/**
 * An error as two one-line fields. ioredis's cluster client says only "Failed to refresh slots cache."
 * and keeps why (the last node's error) beside it: that goes into the reason, and its code is the code.
 */
export function describeError(error: unknown): { readonly code?: string; readonly reason: string } {
  if (!(error instanceof Error)) return { reason: firstLine(String(error)) };
  const cause = (error as { lastNodeError?: unknown }).lastNodeError;
  const code = codeOf(error) ?? (cause instanceof Error ? codeOf(cause) : undefined);
  const reason = firstLine(cause instanceof Error ? `${error.message} (${cause.message})` : error.message);
  return code === undefined ? { reason } : { code, reason };
}

function codeOf(error: Error): string | undefined {
  const { code } = error as { code?: unknown };
  return typeof code === 'string' ? code : undefined;
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0] ?? '';
}
