/**
 * Request and response over node:cluster's IPC channel, in either direction: the primary asks a
 * process (for its metrics), a process asks the primary (for the whole host's). A message carries no
 * answer address, so each request gets an id of its own, the answer names that id, and a request
 * that gets no answer in time gives up; an answer that comes after that finds no request and is
 * dropped. Sending goes through Node's callback, so a closed channel fails the request at once
 * instead of letting it wait out its time-out.
 */
import type { Serializable } from 'node:child_process';
import { IpcChannelError, IpcTimeoutError } from '../errors.js';

/** One end of the channel: node:cluster's `Worker` in the primary, `process` in a forked process. */
export interface IpcPort {
  /** Absent in a process that was not forked with a channel. */
  send?(message: Serializable, callback: (error: Error | null) => void): boolean;
}

/** An end that also hears what the other end sends: what both sides of the metrics exchange use. */
export interface IpcEndpoint extends IpcPort {
  on(event: 'message', listener: (message: unknown) => void): unknown;
}

/** Sends one message; settles once Node has handed it to the channel. */
export function sendOver(port: IpcPort, message: Serializable): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!port.send) {
      reject(new IpcChannelError('no IPC channel: this process was not forked by a cluster primary'));
      return;
    }
    try {
      port.send(message, (error) =>
        error ? reject(new IpcChannelError('the IPC channel refused a message', error)) : resolve(),
      );
    } catch (error) {
      reject(new IpcChannelError('the IPC channel refused a message', error));
    }
  });
}

export type IpcOutcome<T> = { readonly value: T } | { readonly error: Error };

export interface IpcRequests<T> {
  /**
   * Sends the message made for a fresh id and settles with the answer to that id. Rejects with
   * `IpcTimeoutError` when none comes in time, and with `IpcChannelError` when the message cannot
   * be sent or the requests are closed while it waits.
   */
  request(message: (id: number) => Serializable): Promise<T>;
  /** Settles the request with this id; false when none waits for it (it gave up, or never was). */
  answer(id: number, outcome: IpcOutcome<T>): boolean;
  /** How many requests wait for their answer. */
  readonly pending: number;
  /** Rejects every waiting request; later requests reject at once. */
  close(): void;
}

export interface IpcRequestsOptions {
  readonly port: IpcPort;
  readonly timeoutMs: number;
  /** What a request asks for, for error messages: "the cluster metrics", "the metrics of worker w-0". */
  readonly what: string;
}

export function createIpcRequests<T>({ port, timeoutMs, what }: IpcRequestsOptions): IpcRequests<T> {
  const waiting = new Map<number, (outcome: IpcOutcome<T>) => void>();
  let nextId = 0;
  let closed = false;

  return {
    request(message) {
      const id = (nextId += 1);
      return new Promise<T>((resolve, reject) => {
        if (closed) {
          reject(new IpcChannelError(`${what} #${id} was not asked: the requests are closed`));
          return;
        }
        const timer = setTimeout(() => settle({ error: new IpcTimeoutError(what, id, timeoutMs) }), timeoutMs);
        const settle = (outcome: IpcOutcome<T>) => {
          clearTimeout(timer);
          waiting.delete(id);
          if ('error' in outcome) reject(outcome.error);
          else resolve(outcome.value);
        };
        waiting.set(id, settle);
        sendOver(port, message(id)).catch((error: unknown) =>
          waiting.get(id)?.({ error: error instanceof Error ? error : new IpcChannelError(String(error)) }),
        );
      });
    },
    answer(id, outcome) {
      const settle = waiting.get(id);
      settle?.(outcome);
      return settle !== undefined;
    },
    get pending() {
      return waiting.size;
    },
    close() {
      closed = true;
      for (const [id, settle] of [...waiting])
        settle({ error: new IpcChannelError(`${what} #${id} was given up: the requests were closed`) });
    },
  };
}
