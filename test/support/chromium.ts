/**
 * A real headless Chromium for browser tests, driven over the DevTools protocol on a pipe
 * (`--remote-debugging-pipe`: commands on fd 3, answers and events on fd 4, each a JSON message ended
 * by a NUL byte), so no driver library or open port is needed. The tests answer the browser's own
 * HTTP authentication challenges through `Fetch.authRequired`, as a person does at the login prompt,
 * and keep the page off the network: every request a page makes is recorded, and any that does not
 * go to loopback is failed.
 *
 * Needs Debian's `chromium` on PATH. Tests that use it skip when it is missing, saying how to install
 * it, except in CI (`CI` set), where they fail instead.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { findOnPath } from '../../src/platform/find-on-path.js';

const COMMAND = 'chromium';

/** The `skip` option of tests that need Chromium: a reason outside CI when it is missing, else false. */
export function skipUnlessChromium(): string | false {
  if (findOnPath(COMMAND, process.env.PATH) !== undefined) return false;
  if ((process.env.CI ?? '') !== '') return false;
  return `${COMMAND} is not installed; apt-get install chromium`;
}

/** The path of `chromium`, or an error that says how to install it (in CI, where its tests do not skip). */
export function requireChromium(): string {
  const binary = findOnPath(COMMAND, process.env.PATH);
  if (binary === undefined) {
    throw new Error(
      'the `chromium` binary is not on PATH, and this test needs a real browser. ' +
        'Install it with `sudo apt-get install chromium` (CI does so in .ci/run).',
    );
  }
  return binary;
}

export interface ProtocolEvent {
  readonly method: string;
  readonly params: Record<string, unknown>;
  readonly sessionId?: string;
}

/** How the page answers an HTTP authentication challenge. */
export type AuthAnswer = { readonly username: string; readonly password: string } | 'cancel';

export interface AuthChallenge {
  readonly scheme: string;
  readonly realm: string;
  readonly url: string;
}

export interface BrowserPage {
  /** Navigates and resolves once the navigation has committed. */
  goto(url: string): Promise<void>;
  /** Evaluates an expression in the page and returns its value. */
  evaluate<T>(expression: string): Promise<T>;
  /** A PNG of the viewport. */
  screenshot(): Promise<Buffer>;
  /** Every challenge the browser met, in order. */
  readonly challenges: AuthChallenge[];
  /** Every URL the page asked for, in order, wherever it pointed. */
  readonly requests: string[];
  /** URLs the page tried to reach off loopback (and was refused). */
  readonly blocked: string[];
}

export interface Browser {
  /** A new tab in a context of its own (its own auth cache), answering challenges with `auth`. */
  newPage(auth: AuthAnswer): Promise<BrowserPage>;
  close(): Promise<void>;
}

interface Pending {
  resolve(result: Record<string, unknown>): void;
  reject(error: Error): void;
}

const COMMAND_TIMEOUT_MS = 60_000;

const text = (value: unknown): string => (typeof value === 'string' ? value : '');

export async function launchChromium({ width = 1280, height = 900 } = {}): Promise<Browser> {
  const binary = requireChromium();
  const profile = mkdtempSync(join(tmpdir(), 'bullpen-chromium-'));
  const child: ChildProcess = spawn(
    binary,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-extensions',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--no-default-browser-check',
      '--mute-audio',
      '--remote-debugging-pipe',
      `--user-data-dir=${profile}`,
      `--window-size=${width},${height}`,
      'about:blank',
    ],
    // Its own process group, so that a browser that will not close can be stopped with its helpers.
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], detached: true },
  );
  let stderr = '';
  (child.stdio[2] as Readable).setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4_000);
  });
  const input = child.stdio[3] as Writable;
  const output = child.stdio[4] as Readable;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  let nextId = 1;
  const pending = new Map<number, Pending>();
  const listeners = new Set<(event: ProtocolEvent) => void>();
  let buffered = Buffer.alloc(0);
  output.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (let end = buffered.indexOf(0); end !== -1; end = buffered.indexOf(0)) {
      const message = JSON.parse(buffered.subarray(0, end).toString('utf8')) as {
        id?: number;
        result?: Record<string, unknown>;
        error?: { message: string };
        method?: string;
        params?: Record<string, unknown>;
        sessionId?: string;
      };
      buffered = buffered.subarray(end + 1);
      if (message.id !== undefined) {
        const waiting = pending.get(message.id);
        pending.delete(message.id);
        if (message.error) waiting?.reject(new Error(`chromium: ${message.error.message}`));
        else waiting?.resolve(message.result ?? {});
      } else if (message.method !== undefined) {
        const event: ProtocolEvent = {
          method: message.method,
          params: message.params ?? {},
          ...(message.sessionId === undefined ? {} : { sessionId: message.sessionId }),
        };
        for (const listener of listeners) listener(event);
      }
    }
  });
  void exited.then(() => {
    for (const waiting of pending.values()) waiting.reject(new Error(`chromium exited: ${stderr}`));
    pending.clear();
  });

  const send = (method: string, params: Record<string, unknown> = {}, sessionId?: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`chromium did not answer ${method} within ${COMMAND_TIMEOUT_MS} ms`));
      }, COMMAND_TIMEOUT_MS);
      pending.set(id, {
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      input.write(`${JSON.stringify({ id, method, params, ...(sessionId === undefined ? {} : { sessionId }) })}\0`);
    });

  // The first answer says the pipe works (and waits out the browser's start-up).
  await send('Browser.getVersion');

  return {
    async newPage(auth) {
      const { browserContextId } = await send('Target.createBrowserContext');
      const { targetId } = await send('Target.createTarget', { url: 'about:blank', browserContextId });
      const { sessionId } = (await send('Target.attachToTarget', { targetId, flatten: true })) as {
        sessionId: string;
      };
      const challenges: AuthChallenge[] = [];
      const requests: string[] = [];
      const blocked: string[] = [];
      listeners.add((event) => {
        if (event.sessionId !== sessionId) return;
        const requestId = event.params.requestId;
        if (event.method === 'Fetch.requestPaused') {
          const url = text((event.params.request as { url?: unknown } | undefined)?.url);
          requests.push(url);
          if (/^https?:\/\/(127\.0\.0\.1|localhost)[:/]/.test(url) || url.startsWith('data:')) {
            void send('Fetch.continueRequest', { requestId }, sessionId).catch(() => {});
          } else {
            blocked.push(url);
            void send('Fetch.failRequest', { requestId, errorReason: 'BlockedByClient' }, sessionId).catch(() => {});
          }
        } else if (event.method === 'Fetch.authRequired') {
          const challenge = event.params.authChallenge as { scheme?: unknown; realm?: unknown };
          const request = event.params.request as { url?: unknown } | undefined;
          challenges.push({
            scheme: text(challenge.scheme),
            realm: text(challenge.realm),
            url: text(request?.url),
          });
          const authChallengeResponse =
            auth === 'cancel' ? { response: 'CancelAuth' } : { response: 'ProvideCredentials', ...auth };
          void send('Fetch.continueWithAuth', { requestId, authChallengeResponse }, sessionId).catch(() => {});
        }
      });
      await send('Fetch.enable', { handleAuthRequests: true, patterns: [{ urlPattern: '*' }] }, sessionId);
      await send('Page.enable', {}, sessionId);
      await send('Runtime.enable', {}, sessionId);

      const evaluate = async <T>(expression: string): Promise<T> => {
        const reply = (await send('Runtime.evaluate', { expression, returnByValue: true }, sessionId)) as {
          result?: { value?: unknown };
          exceptionDetails?: { text?: string };
        };
        if (reply.exceptionDetails) throw new Error(`page threw: ${reply.exceptionDetails.text ?? ''}`);
        return reply.result?.value as T;
      };
      return {
        challenges,
        requests,
        blocked,
        evaluate,
        async goto(url) {
          const reply = (await send('Page.navigate', { url }, sessionId)) as { errorText?: string };
          if (reply.errorText) throw new Error(`navigation to ${url} failed: ${reply.errorText}`);
        },
        async screenshot() {
          const { data } = (await send('Page.captureScreenshot', { format: 'png' }, sessionId)) as { data: string };
          return Buffer.from(data, 'base64');
        },
      };
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        await Promise.race([send('Browser.close').catch(() => {}), exited]);
        const timer = setTimeout(() => {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        }, 10_000);
        await exited;
        clearTimeout(timer);
      }
      // Helpers that outlived the browser (there should be none) go with its process group.
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group is gone already
      }
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
