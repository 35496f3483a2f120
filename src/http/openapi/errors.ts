/**
 * The error answers of the API as the OpenAPI document describes them: one entry per code, with its
 * status and example taken from a real instance of the catalogue's class (`src/errors.ts`), so that a
 * status or message changed there changes here too. Every error body is `{ error, code, details? }`,
 * as `errorHandler` writes it; `details` is there only for the codes listed with a shape for it.
 */
import { z } from 'zod';
import {
  BacklogFullError,
  BadRequestError,
  BullpenError,
  IdempotencyKeyInUseError,
  IdempotencyKeyReusedError,
  InvalidIdempotencyKeyError,
  InvalidScheduleError,
  JobFinishedError,
  JobNotRetryableError,
  MalformedJsonError,
  MalformedPathError,
  MethodNotAllowedError,
  MetricsUnavailableError,
  NoLiveWorkerError,
  NotDurableError,
  NotFoundError,
  NotReadyError,
  PayloadTooLargeError,
  QueueUnavailableError,
  retriesLater,
  STARTUP_WAITS,
  TooManyStreamsError,
  UnauthorizedError,
  UnknownJobNameError,
  InvalidExpiryError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../../errors.js';

export interface ErrorDoc {
  readonly code: string;
  readonly status: number;
  /** When it is answered, for the reader of the document. */
  readonly when: string;
  /** An answer as the error handler writes it. */
  readonly example: { readonly error: string; readonly code: string; readonly details?: unknown };
  /** The shape of `details`, for the codes that carry it. */
  readonly details?: z.ZodType;
  /** Whether the answer has a `Retry-After` (its error carries `retryAfterSeconds`). */
  readonly retryAfter: boolean;
}

/** A code the catalogue has no class for yet is declared by hand, in the same form. */
interface ErrorLike {
  readonly code: string;
  readonly status: number;
  readonly message: string;
  readonly details?: unknown;
}

function described(error: BullpenError | ErrorLike, when: string, details?: z.ZodType): ErrorDoc {
  return {
    code: error.code,
    status: error.status,
    when,
    example: {
      error: error.message,
      code: error.code,
      ...(error.details === undefined ? {} : { details: error.details }),
    },
    ...(details === undefined ? {} : { details }),
    retryAfter: error instanceof BullpenError && retriesLater(error),
  };
}

const SAMPLE_JOB_ID = 'myhost-2~6f0cY2xk3QvB1sZp0mWq8A';

/** Every error code a route of the API can answer, by code. */
export function createErrorDocs({ bodyLimitBytes }: { bodyLimitBytes: number }) {
  const retryAfter = z.object({ retryAfterSeconds: z.int().min(0) });
  const jobState = z.object({ state: z.string().describe('The state the job is in.') });
  return {
    VALIDATION_FAILED: described(
      new ValidationError('Invalid task', {
        details: [
          {
            path: 'jobName',
            message: 'must start with a letter or digit and contain only letters, digits and _ . : -',
          },
        ],
      }),
      'the body, query or a path parameter (a group name) breaks the rules of its schema; `details` lists each problem by path',
      z.array(z.object({ path: z.string(), message: z.string() })),
    ),
    MALFORMED_JSON: described(new MalformedJsonError(), 'the body is not JSON, or is empty'),
    BAD_REQUEST: described(
      new BadRequestError('The request body could not be read: check its Content-Encoding and Content-Length'),
      'the body cannot be read: a `Content-Encoding` over data that does not inflate, or a wrong `Content-Length`',
    ),
    MALFORMED_PATH: described(
      new MalformedPathError(),
      'the path holds percent-encoding that does not decode (`/jobs/%zz`)',
    ),
    INVALID_IDEMPOTENCY_KEY: described(
      new InvalidIdempotencyKeyError(),
      '`Idempotency-Key` is empty, longer than 255 characters, or not visible ASCII',
    ),
    UNAUTHORIZED: described(
      new UnauthorizedError(),
      '`API_KEY` is set and the request lacks `Authorization: Bearer <key>`',
    ),
    NOT_FOUND: described(
      new NotFoundError(`No job with id ${SAMPLE_JOB_ID}`),
      'no such job: an unknown id, or a job already removed by retention',
    ),
    METHOD_NOT_ALLOWED: described(
      new MethodNotAllowedError('DELETE', ['GET', 'HEAD', 'OPTIONS']),
      'a known path asked with a method it does not take; `Allow` lists those it takes',
      z.object({ allowed: z.array(z.string()) }),
    ),
    IDEMPOTENCY_KEY_IN_USE: described(
      new IdempotencyKeyInUseError(2),
      'a request with the same `Idempotency-Key` is still being answered after 2 s; `Retry-After` says when to try again',
      retryAfter,
    ),
    JOB_FINISHED: described(
      new JobFinishedError(SAMPLE_JOB_ID, 'completed'),
      'the job has already completed, failed or expired: there is nothing left to cancel',
      jobState,
    ),
    JOB_NOT_RETRYABLE: described(
      new JobNotRetryableError(SAMPLE_JOB_ID, 'active'),
      'the job is neither failed, cancelled nor expired',
      jobState,
    ),
    PAYLOAD_TOO_LARGE: described(
      new PayloadTooLargeError(bodyLimitBytes),
      "the body is over the route's limit (`BODY_LIMIT_BYTES`, or `BULK_BODY_LIMIT_BYTES` for a batch)",
      z.object({ limitBytes: z.int() }),
    ),
    UNSUPPORTED_MEDIA_TYPE: described(
      new UnsupportedMediaTypeError('Content-Type must be application/json, not text/plain'),
      '`Content-Type` is missing or not `application/json`, its charset is not utf-8, or its `Content-Encoding` is not identity, gzip, deflate or br; the message says which',
    ),
    IDEMPOTENCY_KEY_REUSED: described(
      new IdempotencyKeyReusedError(),
      'the `Idempotency-Key` was used before with a different body',
    ),
    INVALID_SCHEDULE: described(
      new InvalidScheduleError([
        { path: 'cron', message: 'must be a cron expression: Constraint error, got value 61' },
      ]),
      'a well-formed schedule that cannot run as given: a cron expression that does not parse, an unknown time ' +
        'zone, ticks closer than `SCHEDULE_MIN_INTERVAL_MS`, both or neither of `cron` and `everyMs`, or an ' +
        '`endAt` not after `startAt` or already past; `details` names each field. Nothing is stored',
      z.array(z.object({ path: z.string(), message: z.string() })),
    ),
    INVALID_EXPIRY: described(
      new InvalidExpiryError([
        { path: 'options.delayMs', message: 'must end before the job expires (expiresInMs or expiresAt)' },
      ]),
      'the expiry cannot be met as asked: `expiresInMs` and `expiresAt` both given, an `expiresAt` not in the ' +
        'future or over 30 days ahead, or a `delayMs` that reaches the expiry; `details` names each field by ' +
        'path (`tasks.<index>.options.<field>` in a batch). Nothing is enqueued',
      z.array(z.object({ path: z.string(), message: z.string() })),
    ),
    UNKNOWN_JOB_NAME: described(
      new UnknownJobNameError([{ path: 'tasks.1.jobName', jobName: 'resize_image' }], ['sha256', 'videoProcessing']),
      'a job name with no handler file that the built-in dummy is not set to run (`DUMMY_JOB_NAMES`); ' +
        '`details` names each such task by path and lists the known names. Nothing is enqueued',
      z.object({
        unknownJobNames: z.array(
          z.object({
            path: z.string().describe('Where in the body: `jobName`, or `tasks.<index>.jobName` in a batch.'),
            jobName: z.string(),
          }),
        ),
        knownJobNames: z.array(z.string()).describe('The job names a task may have here.'),
      }),
    ),
    BACKLOG_FULL: described(
      new BacklogFullError(1),
      '`MAX_BACKLOG` jobs already wait to start (a batch must fit whole); `Retry-After` says when to try again',
      retryAfter,
    ),
    INTERNAL: described(
      { code: 'INTERNAL', status: 500, message: 'Internal server error' },
      'an unexpected failure; it is logged, and no detail of it is answered',
    ),
    NO_LIVE_WORKER: described(new NoLiveWorkerError(), 'no worker has sent a heartbeat within `WORKER_TTL_MS`'),
    QUEUE_UNAVAILABLE: described(
      new QueueUnavailableError(undefined),
      'Redis cannot be reached or does not answer within `COMMAND_TIMEOUT_MS`; the request does not hang',
    ),
    NOT_DURABLE: described(
      new NotDurableError([SAMPLE_JOB_ID], 0, 1, 1),
      'only with `ENQUEUE_MIN_REPLICAS`: the jobs were added, but fewer replicas acknowledged them within ' +
        '`ENQUEUE_REPLICA_TIMEOUT_MS`. They stay and run; a retry with the same `Idempotency-Key` answers them ' +
        '(200, replayed) once enough replicas hold them; `Retry-After` says when to try again',
      z.object({
        jobIds: z.array(z.string()).describe('The jobs that were added, in request order.'),
        acknowledged: z.int().min(0).describe('How many replicas acknowledged them in time.'),
        required: z.int().min(1).describe('`ENQUEUE_MIN_REPLICAS`.'),
        retryAfterSeconds: z.int().min(0),
      }),
    ),
    NOT_READY: described(
      new NotReadyError('redis', 5),
      'this process is still starting: it waits for Redis (`waitingFor: redis`, for as long as Redis takes), takes ' +
        "its worker id's lease (`lease`) or starts its consumer (`consumer`); `Retry-After` says when to try again",
      z.object({ waitingFor: z.enum(STARTUP_WAITS), retryAfterSeconds: z.int().min(0) }),
    ),
    TOO_MANY_STREAMS: described(
      new TooManyStreamsError(1000, 2),
      'this process already keeps `SSE_MAX_STREAMS` event streams open; `Retry-After` says when to try again',
      retryAfter,
    ),
    METRICS_UNAVAILABLE: described(
      new MetricsUnavailableError(undefined),
      'the primary did not answer the scrape in time, or failed it',
    ),
  } satisfies Record<string, ErrorDoc>;
}

export type ErrorDocs = ReturnType<typeof createErrorDocs>;
export type ErrorCode = keyof ErrorDocs;

/** The body schema of one code: `{ error, code, details }`, `details` only where the code has it. */
export function errorBodySchema(doc: ErrorDoc): z.ZodType {
  return z
    .object({
      error: z.string(),
      code: z.literal(doc.code),
      ...(doc.details === undefined ? {} : { details: doc.details }),
    })
    .meta({ description: doc.when, examples: [doc.example] });
}
