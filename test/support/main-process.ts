/**
 * `node dist/src/main.js` started as `npm start` starts it, with only the environment a test gives,
 * for tests of start-up itself: its exit, its output and its JSON log lines. Tests of the running
 * service use test/support/service.ts, which adds a key prefix, readiness waits and an HTTP client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { LogLine } from './service.js';

export interface MainProcess {
  readonly child: ChildProcess;
  /** What it wrote so far. */
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** The JSON log lines on stdout so far; a line still being written is left out. */
  readonly lines: () => LogLine[];
  /** Resolves with the primary's exit code once it has exited. */
  readonly exited: Promise<number | null>;
}

/** With `detached`, in a process group of its own, as a terminal gives one to `npm start`. */
export function spawnMain(env: Readonly<Record<string, string>>, { detached = false } = {}): MainProcess {
  const child = spawn(process.execPath, ['dist/src/main.js'], { env, detached, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    lines: () =>
      stdout.split('\n').flatMap((line) => {
        try {
          return [JSON.parse(line) as LogLine];
        } catch {
          return [];
        }
      }),
    exited,
  };
}
