/**
 * The one place where errors become responses: catalogue errors keep their status and code, body
 * parser and routing failures are mapped onto the catalogue, and anything else is logged and
 * answered with a generic 500, so no stack trace or Redis message reaches a client. A client's own
 * mistake (any 4xx) is logged at `info` at most: it says nothing about the service's health.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from '../logging/logger.js';
import {
  BadRequestError,
  BullpenError,
  MalformedJsonError,
  MalformedPathError,
  MethodNotAllowedError,
  NotFoundError,
  NotReadyError,
  PayloadTooLargeError,
  RequestAbortedError,
  retriesLater,
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from '../errors.js';
import { allowedMethods } from './route-table.js';

/** What a client sees of the path it sent in a 404: enough to recognise it, never kilobytes of it. */
export const ECHO_LIMIT = 80;

export function echo(text: string): string {
  return text.length <= ECHO_LIMIT ? text : `${text.slice(0, ECHO_LIMIT)}… (${text.length} characters)`;
}

/** The shape of body-parser's errors (http-errors objects with a type, and the culprit). */
interface ClientError {
  readonly status: number;
  readonly type?: string;
  readonly charset?: string;
  readonly encoding?: string;
  /** The limit that was exceeded, on `entity.too.large`: each route may have its own. */
  readonly limit?: number;
}

function isClientError(error: unknown): error is ClientError {
  if (typeof error !== 'object' || error === null) return false;
  const status = (error as { status?: unknown }).status;
  return typeof status === 'number' && status >= 400 && status < 500;
}

function fromClientError(error: ClientError, limitBytes: number): BullpenError {
  switch (error.type) {
    case 'entity.parse.failed':
      return new MalformedJsonError();
    case 'entity.too.large':
      return new PayloadTooLargeError(typeof error.limit === 'number' ? error.limit : limitBytes);
    case 'encoding.unsupported':
      return new UnsupportedMediaTypeError(
        `Content-Encoding ${echo(String(error.encoding ?? ''))} is not supported; send the body as is, or gzip, deflate or br`,
      );
    case 'charset.unsupported':
      return new UnsupportedMediaTypeError(
        `charset ${echo(String(error.charset ?? '').toLowerCase())} is not supported; send utf-8`,
      );
    case 'request.aborted':
      return new RequestAbortedError();
    default:
      // Bodies that do not inflate, sizes that disagree with Content-Length, and the like.
      return new BadRequestError('The request body could not be read: check its Content-Encoding and Content-Length');
  }
}

/** OPTIONS on a known path: the methods it takes, as JSON, before any router answers in text. */
export const optionsHandler: RequestHandler = (req, res, next) => {
  const allowed = req.method === 'OPTIONS' ? allowedMethods(req.path) : undefined;
  if (allowed === undefined) {
    next();
    return;
  }
  res.set('Allow', allowed.join(', ')).status(200).json({ allow: allowed });
};

/** A known path with another method is a 405 with `Allow`; anything else is a 404. */
export const notFound: RequestHandler = (req, res, next) => {
  const allowed = allowedMethods(req.path);
  if (allowed !== undefined) {
    res.set('Allow', allowed.join(', '));
    next(new MethodNotAllowedError(req.method, allowed));
    return;
  }
  next(new NotFoundError(`No route for ${req.method} ${echo(req.path)}`));
};

export function errorHandler({
  logger,
  bodyLimitBytes,
}: {
  logger: Logger;
  bodyLimitBytes: number;
}): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const known =
      error instanceof BullpenError
        ? error
        : error instanceof URIError
          ? new MalformedPathError()
          : isClientError(error)
            ? fromClientError(error, bodyLimitBytes)
            : undefined;
    if (!known) {
      logger.error({ event: 'http.failed', err: error, method: req.method, path: echo(req.path) }, 'request failed');
      res.status(500).json({ error: 'Internal server error', code: 'INTERNAL' });
      return;
    }
    // A process still starting says why in its own start-up lines (redis.waiting), not once per request.
    if (known.status >= 500 && !(known instanceof NotReadyError))
      logger.warn(
        { event: 'http.unavailable', code: known.code, err: known.cause ?? known, path: echo(req.path) },
        known.message,
      );
    else if (known instanceof RequestAbortedError)
      logger.info({ event: 'http.aborted', method: req.method, path: echo(req.path) }, known.message);
    if (retriesLater(known)) res.set('Retry-After', String(known.retryAfterSeconds));
    if (known instanceof UnauthorizedError) res.set('WWW-Authenticate', known.challenge);
    res.status(known.status).json({
      error: known.message,
      code: known.code,
      ...(known.details === undefined ? {} : { details: known.details }),
    });
  };
}
