/**
 * The error catalogue: every error a client can see, with a stable code and its HTTP status. The
 * HTTP layer maps these to JSON; anything else becomes a generic 500 without internals.
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

export class UnauthorizedError extends BullpenError {
  override readonly name = 'UnauthorizedError';
  readonly code = 'UNAUTHORIZED';
  readonly status = 401;
  constructor() {
    super('A valid API key is required: Authorization: Bearer <key>');
  }
}
