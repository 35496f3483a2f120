/**
 * The check every route that takes a JSON body makes before it validates the body: the parser leaves
 * `req.body` empty for a request that is not JSON, and a schema would then say only that an object is
 * missing, not why.
 */
import type { Request } from 'express';
import { MalformedJsonError, UnsupportedMediaTypeError } from '../errors.js';

/**
 * Says what is really wrong with a body that is not a JSON document: no Content-Type, another
 * Content-Type, or no body at all. (`req.is` cannot tell the last two apart: it answers null for
 * any request without a body.) Charsets and encodings the parser refuses are answered by the error
 * handler with their own messages.
 */
export function requireJsonBody(req: Request): void {
  const header = req.get('content-type');
  if (header === undefined) throw new UnsupportedMediaTypeError('Content-Type is missing; send application/json');
  const mediaType = header.split(';')[0]?.trim().toLowerCase() ?? '';
  if (mediaType !== 'application/json') {
    throw new UnsupportedMediaTypeError(
      `Content-Type must be application/json, not ${mediaType.slice(0, 80) || 'empty'}`,
    );
  }
  const length = req.get('content-length');
  const chunked = req.get('transfer-encoding') !== undefined;
  if (length === '0' || (length === undefined && !chunked))
    throw new MalformedJsonError('Request body is empty; send a JSON object');
}
