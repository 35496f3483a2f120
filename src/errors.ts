/**
 * The error catalogue: every error the service raises on purpose, one class per code. Those a client
 * can see extend `BullpenError` and carry their HTTP status; the HTTP layer maps them to JSON, and
 * anything else becomes a generic 500 without internals. Those that stay inside the service (in
 * logs, exit messages, a failed job's reason) extend `InternalError`: a code, no status, so that the
 * HTTP layer can never mistake one for an answer.
 */
export abstract class BullpenError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  readonly details: unknown;

  constructor(message: string, options: { details?: unknown; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.details = options.details;
  }
}

/** An answer that says when to ask again: the error handler sends `retryAfterSeconds` as `Retry-After`. */
export interface RetryLater {
  readonly retryAfterSeconds: number;
}

/** Whether an error carries a `retryAfterSeconds`: every one that does gets a `Retry-After`. */
export function retriesLater(error: BullpenError): error is BullpenError & RetryLater {
  return typeof (error as Partial<RetryLater>).retryAfterSeconds === 'number';
}

/** An error no client sees, with a stable code for logs and exit messages. */
export abstract class InternalError extends Error {
  abstract readonly code: string;

  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
  }
}

/** An environment that does not parse: start-up stops with a message naming each variable. */
export class ConfigError extends InternalError {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG_INVALID';
}

/** A job attempt ran past its time limit and its thread was stopped; the attempt counts as failed. */
export class JobTimeoutError extends InternalError {
  override readonly name = 'JobTimeoutError';
  readonly code = 'JOB_TIMEOUT';
  constructor(readonly timeoutMs: number) {
    super(`the job exceeded its time limit of ${timeoutMs} ms and was stopped`);
  }
}

/** Another live process holds this worker id: the process stops and says which HOST_ID clashes. */
export class LeaseRefusedError extends InternalError {
  override readonly name = 'LeaseRefusedError';
  readonly code = 'LEASE_REFUSED';
  constructor(
    readonly workerId: string,
    readonly hostId: string,
    readonly holder: string,
    readonly expiresInMs: number,
  ) {
    super(
      `worker id ${workerId} is held by another live process (${holder}, lease renewed until ${expiresInMs} ms from now): ` +
        `HOST_ID=${hostId} is in use by another running instance; give each instance its own HOST_ID`,
    );
  }
}

/** A request over the cluster's IPC channel got no answer in time. */
export class IpcTimeoutError extends InternalError {
  override readonly name = 'IpcTimeoutError';
  readonly code = 'IPC_TIMEOUT';
  constructor(
    what: string,
    readonly requestId: number,
    timeoutMs: number,
  ) {
    super(`no answer to ${what} #${requestId} within ${timeoutMs} ms`);
  }
}

/** The cluster's IPC channel is closed, or refused a message. */
export class IpcChannelError extends InternalError {
  override readonly name = 'IpcChannelError';
  readonly code = 'IPC_CHANNEL_CLOSED';
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
  }
}

export class ValidationError extends BullpenError {
  override readonly name = 'ValidationError';
  readonly code = 'VALIDATION_FAILED';
  readonly status = 400;
}

export class MalformedJsonError extends BullpenError {
  override readonly name = 'MalformedJsonError';
  readonly code = 'MALFORMED_JSON';
  readonly status = 400;
  constructor(message = 'Request body is not valid JSON') {
    super(message);
  }
}

/** The request could not be read: a body that is not valid compressed data, or the like. */
export class BadRequestError extends BullpenError {
  override readonly name = 'BadRequestError';
  readonly code = 'BAD_REQUEST';
  readonly status = 400;
}

/** A path whose percent-encoding does not decode (`/jobs/%zz`). */
export class MalformedPathError extends BullpenError {
  override readonly name = 'MalformedPathError';
  readonly code = 'MALFORMED_PATH';
  readonly status = 400;
  constructor() {
    super('The request path holds malformed percent-encoding');
  }
}

/** The client went away before its body arrived: nobody reads the answer, but it is logged. */
export class RequestAbortedError extends BullpenError {
  override readonly name = 'RequestAbortedError';
  readonly code = 'REQUEST_ABORTED';
  readonly status = 400;
  constructor() {
    super('The request was aborted by the client before its body arrived');
  }
}

export class MethodNotAllowedError extends BullpenError {
  override readonly name = 'MethodNotAllowedError';
  readonly code = 'METHOD_NOT_ALLOWED';
  readonly status = 405;
  constructor(
    method: string,
    readonly allowed: readonly string[],
  ) {
    super(`${method} is not allowed here; allowed: ${allowed.join(', ')}`, { details: { allowed } });
  }
}

export class PayloadTooLargeError extends BullpenError {
  override readonly name = 'PayloadTooLargeError';
  readonly code = 'PAYLOAD_TOO_LARGE';
  readonly status = 413;
  constructor(limitBytes: number) {
    super(`Request body exceeds ${limitBytes} bytes`, { details: { limitBytes } });
  }
}

export class UnsupportedMediaTypeError extends BullpenError {
  override readonly name = 'UnsupportedMediaTypeError';
  readonly code = 'UNSUPPORTED_MEDIA_TYPE';
  readonly status = 415;
  constructor(message = 'Content-Type must be application/json') {
    super(message);
  }
}

export class NotFoundError extends BullpenError {
  override readonly name = 'NotFoundError';
  readonly code = 'NOT_FOUND';
  readonly status = 404;
}

export class NoLiveWorkerError extends BullpenError {
  override readonly name = 'NoLiveWorkerError';
  readonly code = 'NO_LIVE_WORKER';
  readonly status = 503;
  constructor() {
    super('No live worker can take the task; try again shortly');
  }
}

export class QueueUnavailableError extends BullpenError {
  override readonly name = 'QueueUnavailableError';
  readonly code = 'QUEUE_UNAVAILABLE';
  readonly status = 503;
  constructor(cause: unknown) {
    super('The queue store is unavailable; try again shortly', { cause });
  }
}

/**
 * ENQUEUE_MIN_REPLICAS is set and fewer replicas acknowledged the jobs' write within
 * ENQUEUE_REPLICA_TIMEOUT_MS. The jobs exist on the master and run; a retry with the same
 * Idempotency-Key answers them again once enough replicas hold them.
 */
export class NotDurableError extends BullpenError {
  override readonly name = 'NotDurableError';
  readonly code = 'NOT_DURABLE';
  readonly status = 503;
  constructor(
    jobIds: readonly string[],
    acknowledged: number,
    required: number,
    readonly retryAfterSeconds: number,
  ) {
    super(
      `The task was enqueued, but only ${acknowledged} of the ${required} replicas required (ENQUEUE_MIN_REPLICAS) ` +
        'acknowledged it in time; retry with the same Idempotency-Key to get the same job once it is durable',
      { details: { jobIds, acknowledged, required, retryAfterSeconds } },
    );
  }
}

/** What a process that has not finished starting waits for, in order; see `NotReadyError`. */
export const STARTUP_WAITS = ['redis', 'lease', 'consumer'] as const;
export type StartupWait = (typeof STARTUP_WAITS)[number];

const WAITING_FOR: Record<StartupWait, string> = {
  redis: 'waiting for Redis to answer',
  lease: "taking its worker id's lease and recovering what its predecessor left",
  consumer: 'starting its consumer',
};

/**
 * This process is up but not serving yet: it waits for Redis (for as long as Redis takes), or for its
 * lease, or is starting its consumer. `Retry-After` says when to ask again.
 */
export class NotReadyError extends BullpenError {
  override readonly name = 'NotReadyError';
  readonly code = 'NOT_READY';
  readonly status = 503;
  constructor(
    readonly waitingFor: StartupWait,
    readonly retryAfterSeconds: number,
  ) {
    super(`This process is starting: ${WAITING_FOR[waitingFor]}; try again shortly`, {
      details: { waitingFor, retryAfterSeconds },
    });
  }
}

/** The cluster's metrics could not be gathered: the primary did not answer the scrape, or failed it. */
export class MetricsUnavailableError extends BullpenError {
  override readonly name = 'MetricsUnavailableError';
  readonly code = 'METRICS_UNAVAILABLE';
  readonly status = 503;
  constructor(cause: unknown) {
    super('The cluster metrics are unavailable; try again shortly', { cause });
  }
}

/** This process already serves SSE_MAX_STREAMS event streams: another may have room, or this one shortly. */
export class TooManyStreamsError extends BullpenError {
  override readonly name = 'TooManyStreamsError';
  readonly code = 'TOO_MANY_STREAMS';
  readonly status = 503;
  constructor(
    limit: number,
    readonly retryAfterSeconds: number,
  ) {
    super(`This process already serves ${limit} event streams (SSE_MAX_STREAMS); try again shortly`, {
      details: { retryAfterSeconds },
    });
  }
}

/** Runs a read of Redis-backed state; a failure means the store is away, answered as 503. */
export async function fromStore<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    throw error instanceof BullpenError ? error : new QueueUnavailableError(error);
  }
}

export class BacklogFullError extends BullpenError {
  override readonly name = 'BacklogFullError';
  readonly code = 'BACKLOG_FULL';
  readonly status = 429;
  constructor(readonly retryAfterSeconds: number) {
    super('Too many tasks are waiting; try again later', { details: { retryAfterSeconds } });
  }
}

/** An Idempotency-Key header that is empty, too long, or holds characters other than visible ASCII. */
export class InvalidIdempotencyKeyError extends BullpenError {
  override readonly name = 'InvalidIdempotencyKeyError';
  readonly code = 'INVALID_IDEMPOTENCY_KEY';
  readonly status = 400;
  constructor() {
    super('Idempotency-Key must be 1 to 255 visible ASCII characters');
  }
}

/** The key was used before with another request body: replaying the first answer would be a lie. */
export class IdempotencyKeyReusedError extends BullpenError {
  override readonly name = 'IdempotencyKeyReusedError';
  readonly code = 'IDEMPOTENCY_KEY_REUSED';
  readonly status = 422;
  constructor() {
    super('This Idempotency-Key was used with a different request body');
  }
}

/** Another request with the same key is still being answered; its answer will be replayed. */
export class IdempotencyKeyInUseError extends BullpenError {
  override readonly name = 'IdempotencyKeyInUseError';
  readonly code = 'IDEMPOTENCY_KEY_IN_USE';
  readonly status = 409;
  constructor(readonly retryAfterSeconds: number) {
    super('A request with this Idempotency-Key is still in progress; retry shortly', {
      details: { retryAfterSeconds },
    });
  }
}

/** A cancel of a job that already completed, failed or expired: there is nothing left to stop. */
export class JobFinishedError extends BullpenError {
  override readonly name = 'JobFinishedError';
  readonly code = 'JOB_FINISHED';
  readonly status = 409;
  constructor(jobId: string, state: string) {
    super(`Job ${jobId} already ${state}; only a job that has not finished can be cancelled`, { details: { state } });
  }
}

/** A retry of a job that is neither failed, cancelled nor expired. */
export class JobNotRetryableError extends BullpenError {
  override readonly name = 'JobNotRetryableError';
  readonly code = 'JOB_NOT_RETRYABLE';
  readonly status = 409;
  constructor(jobId: string, state: string) {
    super(`Job ${jobId} is ${state}; only a failed, cancelled or expired job can be retried`, { details: { state } });
  }
}

/** A task name with no handler file, that the dummy is not meant to run: run, it would look like success. */
export interface UnknownJobName {
  /** Where in the body, as validation errors say it: `jobName`, or `tasks.5.jobName` in a batch. */
  readonly path: string;
  readonly jobName: string;
}

/**
 * A schedule that is well formed but cannot run as given (issue 23): a cron expression that does not
 * parse, an unknown time zone, ticks closer than SCHEDULE_MIN_INTERVAL_MS, bounds that leave no tick.
 * `details` names each field at fault, as a validation error does.
 */
export class InvalidScheduleError extends BullpenError {
  override readonly name = 'InvalidScheduleError';
  readonly code = 'INVALID_SCHEDULE';
  readonly status = 422;
  constructor(details: readonly { readonly path: string; readonly message: string }[]) {
    const [first] = details;
    super(`Invalid schedule${first === undefined ? '' : `: ${first.path} ${first.message}`}`, { details });
  }
}

/**
 * Tasks whose job names nothing here is meant to run (see execution/handlers.ts). `known` lists what
 * would be accepted (`*` is never in it: with `*` nothing is refused).
 */
export class UnknownJobNameError extends BullpenError {
  override readonly name = 'UnknownJobNameError';
  readonly code = 'UNKNOWN_JOB_NAME';
  readonly status = 422;
  constructor(unknown: readonly UnknownJobName[], known: readonly string[]) {
    const names = [...new Set(unknown.map(({ jobName }) => `"${jobName}"`))];
    const shown = names.length > 5 ? `${names.slice(0, 5).join(', ')} and ${names.length - 5} more` : names.join(', ');
    super(`No handler for job name${names.length === 1 ? '' : 's'} ${shown}; known job names: ${known.join(', ')}`, {
      details: { unknownJobNames: unknown, knownJobNames: known },
    });
  }
}

/** One problem of a task's expiry: where in the body, and what is wrong. */
export interface ExpiryProblem {
  readonly path: string;
  readonly message: string;
}

/**
 * Tasks whose expiry cannot be met as asked: both forms given, a time not in the future (or too far
 * ahead), or a delay that reaches it, so that the job would expire before it could start.
 */
export class InvalidExpiryError extends BullpenError {
  override readonly name = 'InvalidExpiryError';
  readonly code = 'INVALID_EXPIRY';
  readonly status = 422;
  constructor(problems: readonly ExpiryProblem[]) {
    const [first] = problems;
    super(`Invalid expiry${first === undefined ? '' : `: ${first.path} ${first.message}`}`, { details: problems });
  }
}

/**
 * No valid API key. `challenge` is the `WWW-Authenticate` answer: Bearer for the API, and HTTP Basic
 * on the pages a browser opens (the dashboard), so that the browser asks for the key itself.
 */
export class UnauthorizedError extends BullpenError {
  override readonly name = 'UnauthorizedError';
  readonly code = 'UNAUTHORIZED';
  readonly status = 401;
  readonly challenge: string;
  constructor({ basic = false }: { basic?: boolean } = {}) {
    super(
      basic
        ? 'A valid API key is required: Authorization: Bearer <key>, or HTTP Basic with the key as the password'
        : 'A valid API key is required: Authorization: Bearer <key>',
    );
    this.challenge = basic ? 'Basic realm="bullpen"' : 'Bearer';
  }
}

/**
 * `npm start` without REDIS_URL found no redis-server on PATH to launch a private one. How to get one
 * is in the fields as well as in the message: the command that installs it on each system, and the
 * setting that uses an existing Redis instead.
 */
export class RedisNotFoundError extends InternalError {
  override readonly name = 'RedisNotFoundError';
  readonly code = 'REDIS_SERVER_NOT_FOUND';
  readonly setting = 'REDIS_URL';
  constructor(
    message: string,
    readonly install: Readonly<Record<string, string>>,
  ) {
    super(message);
  }
}

/** What answered PING on a port (local-redis/ping.ts): its state, and the first line of an answer. */
export interface PortProbe {
  readonly state: 'pong' | 'answered' | 'silent';
  readonly reply?: string;
  readonly reason?: string;
}

/**
 * The private redis-server did not start: its port is taken (the message says by what), it exited,
 * or it never answered. The message ends with redis-server's own last log lines. The same facts are
 * fields too, so that the start-up line that logs the error carries them as data.
 */
export class RedisStartError extends InternalError {
  override readonly name = 'RedisStartError';
  readonly code = 'REDIS_SERVER_START_FAILED';
  /** What answered PING on the port after the launch failed, when it was asked. */
  readonly probe: PortProbe | undefined;
  /** The file that records the port (`server.json`): deleting it has the next start pick another. */
  readonly recordFile: string | undefined;
  constructor(
    message: string,
    readonly port: number,
    readonly logTail: readonly string[],
    found: { readonly probe?: PortProbe; readonly recordFile?: string } = {},
  ) {
    super(message);
    this.probe = found.probe;
    this.recordFile = found.recordFile;
  }
}

/** Another running instance owns the private redis-server of this REDIS_DATA_DIR; the fields say which. */
export class RedisDataDirInUseError extends InternalError {
  override readonly name = 'RedisDataDirInUseError';
  readonly code = 'REDIS_DATA_DIR_IN_USE';
  readonly redisPid: number;
  readonly dataDir: string;
  /** What REDIS_URL would share that server on purpose. */
  readonly redisUrl: string;
  constructor(
    message: string,
    readonly ownerPid: number | undefined,
    readonly port: number,
    server: { readonly redisPid: number; readonly dataDir: string; readonly redisUrl: string },
  ) {
    super(message);
    this.redisPid = server.redisPid;
    this.dataDir = server.dataDir;
    this.redisUrl = server.redisUrl;
  }
}
