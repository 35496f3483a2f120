/**
 * Structured logs.
 *
 * Every process logs JSON lines through pino, bound to its role and worker id so that lines from four
 * interleaved processes stay attributable. On a terminal the same lines are rendered by pino-pretty,
 * synchronously, so a crash never loses its last words. pino-pretty is loaded only then: JSON output
 * (every process in production and tests) does not pay for it at start-up.
 */
import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';

export type { Logger };

export interface LoggerOptions {
  readonly level: string;
  /** Undefined means: pretty when stdout is a terminal. */
  readonly pretty: boolean | undefined;
  readonly bindings: Readonly<Record<string, string | number>>;
  /**
   * Fields added to every line at the time it is written: the ids of the active span when tracing is
   * on (tracing/tracing.ts). Not set when off, so that a line pays for nothing.
   */
  readonly mixin?: (() => Readonly<Record<string, string>>) | undefined;
}

export function createLogger(options: LoggerOptions): Logger {
  const usePretty = options.pretty ?? process.stdout.isTTY === true;
  const base = {
    level: options.level,
    base: { pid: process.pid, ...options.bindings },
    ...(options.mixin === undefined ? {} : { mixin: options.mixin }),
  };
  if (!usePretty) return pino(base);
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return pino(base, pretty({ sync: true, colorize: process.stdout.isTTY === true, ignore: 'hostname' }));
}
