/**
 * Stoplight Prism in proxy mode, for contract tests: it forwards each request to the real service and
 * checks the request and the answer against an OpenAPI document, telling what it found in the
 * `sl-violations` header of the answer (`--errors=false`: it reports, and changes no answer). It runs
 * from the devDependency `@stoplight/prism-cli`, on 127.0.0.1 and a free port; a port taken between
 * its choice and Prism's bind (another test's server, seen in CI) makes it start again on a fresh one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { freePort, startOnFreePorts } from './ports.js';

export interface Violation {
  /** Where: `['request', ...]` or `['response', 'body', ...]`. */
  readonly location: readonly string[];
  readonly severity: 'Error' | 'Warning' | 'Information' | 'Hint';
  readonly code?: string | number;
  readonly message: string;
}

export interface PrismProxy {
  readonly url: string;
  /** What Prism printed, for the message of a failed test. */
  output(): string;
  stop(): Promise<void>;
}

/** Prism reports a request it cannot match to an operation this way, and then checks nothing of it. */
export const ROUTE_NOT_FOUND = 'Selected route not found';

export function violationsOf(headers: Headers): Violation[] {
  const header = headers.get('sl-violations');
  if (header === null) return [];
  if (header.startsWith('Too many violations!')) throw new Error(header.slice(0, 500));
  return JSON.parse(header) as Violation[];
}

/** Starts on a port taken meanwhile, before Prism could bind it, are tried again this many times. */
const PORT_ATTEMPTS = 3;

export function startPrism(documentPath: string, upstream: string, timeoutMs = 60_000): Promise<PrismProxy> {
  return startOnFreePorts(
    PORT_ATTEMPTS,
    async () => startOn(await freePort(), documentPath, upstream, timeoutMs),
    (error) => error instanceof Error && error.message.includes('EADDRINUSE'),
  );
}

async function startOn(port: number, documentPath: string, upstream: string, timeoutMs: number): Promise<PrismProxy> {
  const cli = createRequire(import.meta.url).resolve('@stoplight/prism-cli/dist/index.js');
  const child: ChildProcess = spawn(
    process.execPath,
    [cli, 'proxy', documentPath, upstream, '--errors=false', '--cors=false', '-h', '127.0.0.1', '-p', String(port)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (chunk: Buffer) => {
    // Prism logs every request; only the start and the end of a long run are worth keeping.
    output = (output + chunk.toString('utf8')).slice(-20_000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(killer);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`prism did not start within ${timeoutMs} ms:\n${output}`)),
        timeoutMs,
      );
      const check = () => {
        if (!/Prism is listening/.test(output)) return;
        clearTimeout(timer);
        resolve();
      };
      child.stdout?.on('data', check);
      child.stderr?.on('data', check);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`prism exited with ${code}:\n${output}`));
      });
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `http://127.0.0.1:${port}`, output: () => output, stop };
}
