/**
 * The routes the API serves and the methods each takes, in one table: a known path asked with
 * another method answers 405 with `Allow`, and OPTIONS answers with the same list as JSON. The
 * routers register the same paths; `test/integration/http-edges.test.ts` checks they agree.
 */
export interface RouteEntry {
  /** Matches the path the way Express does: case-insensitive, an optional trailing slash. */
  readonly pattern: RegExp;
  readonly methods: readonly string[];
}

/** GET routes answer HEAD too, as Express does. */
export const ROUTES: readonly RouteEntry[] = Object.freeze([
  { pattern: /^\/enqueue-task\/?$/i, methods: ['POST'] },
  { pattern: /^\/enqueue-tasks\/?$/i, methods: ['POST'] },
  { pattern: /^\/jobs\/?$/i, methods: ['GET', 'HEAD'] },
  { pattern: /^\/jobs\/[^/]+\/?$/i, methods: ['GET', 'HEAD', 'DELETE'] },
  { pattern: /^\/jobs\/[^/]+\/retry\/?$/i, methods: ['POST'] },
  { pattern: /^\/jobs\/[^/]+\/events\/?$/i, methods: ['GET', 'HEAD'] },
  { pattern: /^\/workers\/?$/i, methods: ['GET', 'HEAD'] },
  { pattern: /^\/livez\/?$/i, methods: ['GET', 'HEAD'] },
  { pattern: /^\/healthz\/?$/i, methods: ['GET', 'HEAD'] },
  { pattern: /^\/metrics\/?$/i, methods: ['GET', 'HEAD'] },
  { pattern: /^\/openapi\.json\/?$/i, methods: ['GET', 'HEAD'] },
  // The page, its scripts and styles, and the copy of the document it reads.
  { pattern: /^\/docs(?:\/[^/]+)?\/?$/i, methods: ['GET', 'HEAD'] },
]);

/** Where the queue dashboard is mounted (src/http/admin/admin-ui.ts). */
export const ADMIN_QUEUES_PATH = '/admin/queues';

/**
 * The queue dashboard: its page, its scripts and styles, and the API the page calls, all read-only.
 * It is not in ROUTES because it is optional: with ADMIN_UI=false its paths are unknown (404) like any
 * other. When it is on, the dashboard answers OPTIONS and 405 for its paths itself, from this entry.
 */
export const ADMIN_ROUTE: RouteEntry = Object.freeze({
  pattern: /^\/admin\/queues(?:\/.*)?$/i,
  methods: Object.freeze(['GET', 'HEAD']),
});

/** The methods a known path takes, OPTIONS included; undefined for an unknown path. */
export function allowedMethods(path: string): readonly string[] | undefined {
  const route = ROUTES.find((entry) => entry.pattern.test(path));
  return route === undefined ? undefined : [...route.methods, 'OPTIONS'];
}

/** A path compared the way routing compares it, for exemptions that must follow routing. */
export function routingForm(path: string): string {
  const trimmed = path.toLowerCase().replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}
