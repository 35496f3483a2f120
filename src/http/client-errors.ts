/**
 * Requests Node's HTTP parser refuses before Express sees them (a malformed request line, headers
 * over the size limit) get the same JSON error shape as everything else, instead of Node's empty
 * 400 or 431. A socket that can no longer be written to (the client left, or the parser gave up
 * mid-response) is only closed.
 */
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logging/logger.js';

interface ParserError extends Error {
  readonly code?: string;
}

function answer(status: number, reason: string, code: string, message: string): string {
  const body = JSON.stringify({ error: message, code });
  return [
    `HTTP/1.1 ${status} ${reason}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}

export function answerClientErrors(server: Server, logger: Logger): void {
  server.on('clientError', (error: ParserError, socket: Duplex) => {
    logger.debug({ code: error.code }, 'refused a request the HTTP parser could not read');
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const response =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? answer(431, 'Request Header Fields Too Large', 'HEADERS_TOO_LARGE', 'The request headers are too large')
        : answer(400, 'Bad Request', 'BAD_REQUEST', 'The request could not be parsed as HTTP');
    socket.end(response);
  });
}
