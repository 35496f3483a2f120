/**
 * Structured logs.
 *
 * Every process logs JSON lines through pino, bound to its role and worker id so that lines from four
 * interleaved processes stay attributable. On a terminal the same lines are rendered by pino-pretty,
 * synchronously, so a crash never loses its last words.
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export interface LoggerOptions {
  readonly level: string;
  /** Undefined means: pretty when stdout is a terminal. */
  readonly pretty: boolean | undefined;
  readonly bindings: Readonly<Record<string, string | number>>;
}

export function createLogger(options: LoggerOptions): Logger {
  const usePretty = options.pretty ?? process.stdout.isTTY === true;
  const base = { level: options.level, base: { pid: process.pid, ...options.bindings } };
  if (!usePretty) return pino(base);
  return pino(base, pretty({ sync: true, colorize: process.stdout.isTTY === true, ignore: 'hostname' }));
}
