/**
 * The optional API key. Compared in constant time (both sides hashed first, so that neither the
 * content nor the length of the key leaks through timing), and checked before the body is read, so a
 * refused request costs no parsing and enqueues nothing.
 *
 * The API takes the key as `Authorization: Bearer <key>` only. The pages a person opens in a browser
 * (the dashboard under /admin, the /docs page) take it as HTTP Basic too, with the key as the
 * password and any user name: a browser cannot add a Bearer header to an address typed in, but it
 * asks for Basic credentials itself when refused with a Basic challenge, and then sends them with
 * every request the page makes.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { UnauthorizedError } from '../errors.js';
import { routingForm } from './route-table.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** The browser pages, each with everything under it (its scripts, styles, and the API it calls). */
const BROWSER_PAGES: readonly string[] = ['/admin', '/docs'];

/** Whether a path is, or is under, a page a browser opens: the only paths that take HTTP Basic. */
function isBrowserPage(path: string): boolean {
  const form = routingForm(path);
  return BROWSER_PAGES.some((page) => form === page || form.startsWith(`${page}/`));
}

/** The key a request presents, if any: Bearer anywhere, Basic's password only where `basic` allows. */
function presentedKey(authorization: string, basic: boolean): string | undefined {
  const bearer = /^Bearer (.+)$/.exec(authorization);
  if (bearer) return bearer[1];
  if (!basic) return undefined;
  const credentials = /^Basic ([A-Za-z0-9+/]+={0,2})$/i.exec(authorization)?.[1];
  if (credentials === undefined) return undefined;
  const decoded = Buffer.from(credentials, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? undefined : decoded.slice(colon + 1);
}

export function requireApiKey(apiKey: string, publicPaths: readonly string[]): RequestHandler {
  const expected = digest(apiKey);
  // Compared the way routing compares paths, so that every spelling that reaches /healthz is open.
  const open = new Set(publicPaths.map(routingForm));
  return (req, _res, next) => {
    if (open.has(routingForm(req.path))) {
      next();
      return;
    }
    const basic = isBrowserPage(req.path);
    const key = presentedKey(req.get('authorization') ?? '', basic);
    if (key !== undefined && timingSafeEqual(digest(key), expected)) {
      next();
      return;
    }
    next(new UnauthorizedError({ basic }));
  };
}
