/**
 * The one place where errors become responses: catalogue errors keep their status and code, body
 * parser failures are mapped onto the catalogue, and anything else is logged and answered with a
 * generic 500, so no stack trace or Redis message reaches a client.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from '../logging/logger.js';
import {
  BacklogFullError,
  BullpenError,
  MalformedJsonError,
  NotFoundError,
  PayloadTooLargeError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from '../errors.js';

/** The shape body-parser gives its errors. */
interface BodyParserError {
  readonly type: string;
}

function isBodyParserError(error: unknown): error is BodyParserError {
  return typeof error === 'object' && error !== null && typeof (error as { type?: unknown }).type === 'string';
}

function fromBodyParser(error: BodyParserError, limitBytes: number): BullpenError | undefined {
  switch (error.type) {
    case 'entity.parse.failed':
      return new MalformedJsonError();
    case 'entity.too.large':
      return new PayloadTooLargeError(limitBytes);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new UnsupportedMediaTypeError();
    default:
      return undefined;
  }
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new NotFoundError(`No route for ${req.method} ${req.path}`));
};

export function errorHandler({ logger, bodyLimitBytes }: { logger: Logger; bodyLimitBytes: number }): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const known =
      error instanceof BullpenError ? error : isBodyParserError(error) ? fromBodyParser(error, bodyLimitBytes) : undefined;
    if (!known) {
      logger.error({ err: error, method: req.method, path: req.path }, 'request failed');
      res.status(500).json({ error: 'Internal server error', code: 'INTERNAL' });
      return;
    }
    if (known.status >= 500) logger.warn({ err: known.cause ?? known, path: req.path }, known.message);
    if (known instanceof BacklogFullError) res.set('Retry-After', String(known.retryAfterSeconds));
    if (known instanceof UnauthorizedError) res.set('WWW-Authenticate', 'Bearer');
    res.status(known.status).json({
      error: known.message,
      code: known.code,
      ...(known.details === undefined ? {} : { details: known.details }),
    });
  };
}
