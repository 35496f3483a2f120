/**
 * The IPC messages between the primary and the processes it forks, and the exit codes they agree on.
 * A graceful stop is not a message: the primary sends SIGTERM, which also reaches a process still
 * starting up.
 */
/** A second signal during shutdown: stop now, leaving running jobs for recovery. */
export const FORCE_STOP_MESSAGE = 'bullpen:force-stop';

/** A process serves: it holds its worker id, has recovered and consumes (it listened before, to answer 503s). */
export const PROCESS_READY_MESSAGE = 'bullpen:process-ready';

/** A process could not take its worker id's lease: another live instance holds it. */
export const LEASE_REFUSED_MESSAGE = 'bullpen:lease-refused';
export const EXIT_LEASE_REFUSED = 3;

/** A process could not listen: the port is taken. The primary stops, as forking again would not help. */
export const EXIT_PORT_IN_USE = 5;

/** What the primary and a process say when the port is taken, naming the setting to change. */
export function portInUse(port: number, host: string): string {
  return `port ${port} on ${host} is in use (PORT=${port}); choose another PORT`;
}

export interface LeaseRefusedMessage {
  readonly type: typeof LEASE_REFUSED_MESSAGE;
  readonly workerId: string;
  readonly reason: string;
}

export function isLeaseRefusedMessage(message: unknown): message is LeaseRefusedMessage {
  return (
    typeof message === 'object' && message !== null && (message as { type?: unknown }).type === LEASE_REFUSED_MESSAGE
  );
}
