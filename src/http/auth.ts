/**
 * The optional API key. Compared in constant time (both sides hashed first, so that neither the
 * content nor the length of the key leaks through timing), and checked before the body is read, so a
 * refused request costs no parsing and enqueues nothing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { UnauthorizedError } from '../errors.js';
import { routingForm } from './route-table.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

export function requireApiKey(apiKey: string, publicPaths: readonly string[]): RequestHandler {
  const expected = digest(apiKey);
  // Compared the way routing compares paths, so that every spelling that reaches /healthz is open.
  const open = new Set(publicPaths.map(routingForm));
  return (req, _res, next) => {
    if (open.has(routingForm(req.path))) {
      next();
      return;
    }
    const match = /^Bearer (.+)$/.exec(req.get('authorization') ?? '');
    if (match?.[1] !== undefined && timingSafeEqual(digest(match[1]), expected)) {
      next();
      return;
    }
    next(new UnauthorizedError());
  };
}
