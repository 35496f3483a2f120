/** A pino logger at `debug` whose JSON lines land in an array, for tests that assert on what is logged. */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

/** One captured line: what tests find it by is its `event` and data fields, not `msg`. */
export interface CapturedLine {
  readonly level: number;
  readonly msg: string;
  readonly event?: string;
  readonly [key: string]: unknown;
}

/** Lines go to `into` (a fresh array by default), which is also returned as `lines`. */
export function captureLogger<Line extends { readonly level: number; readonly msg: string } = CapturedLine>(
  into: Line[] = [],
): { logger: Logger; lines: Line[] } {
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line !== '') into.push(JSON.parse(line) as Line);
        done();
      },
    }),
  );
  return { logger, lines: into };
}
