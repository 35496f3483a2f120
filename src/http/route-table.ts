/**
 * The routes the API serves and the methods each takes, in one table: a known path asked with
 * another method answers 405 with `Allow`, and OPTIONS answers with the same list as JSON. The
 * routers register the same paths; `test/integration/http-edges.test.ts` checks they agree.
 */
export interface RouteEntry {
  /** Matches the path the way Express does: case-insensitive, an optional trailing slash. */
  readonly pattern: RegExp;
  readonly methods: readonly string[];
  /**
   * The `route` label of the request metric for an answer no route handler gave (405, or a body the
   * parser refused with 413 or 400): the path its router registers, so that such answers are counted
   * with the route's own and not lumped into `unmatched`.
   */
  readonly label: string;
}

/** GET routes answer HEAD too, as Express does. */
export const ROUTES: readonly RouteEntry[] = Object.freeze([
  { pattern: /^\/enqueue-task\/?$/i, methods: ['POST'], label: '/enqueue-task' },
  { pattern: /^\/enqueue-tasks\/?$/i, methods: ['POST'], label: '/enqueue-tasks' },
  { pattern: /^\/jobs\/?$/i, methods: ['GET', 'HEAD'], label: '/jobs' },
  { pattern: /^\/jobs\/[^/]+\/?$/i, methods: ['GET', 'HEAD', 'DELETE'], label: '/jobs/:id' },
  { pattern: /^\/jobs\/[^/]+\/retry\/?$/i, methods: ['POST'], label: '/jobs/:id/retry' },
  { pattern: /^\/jobs\/[^/]+\/events\/?$/i, methods: ['GET', 'HEAD'], label: '/jobs/:id/events' },
  { pattern: /^\/groups\/?$/i, methods: ['GET', 'HEAD'], label: '/groups' },
  { pattern: /^\/groups\/[^/]+\/?$/i, methods: ['GET', 'HEAD', 'PUT', 'DELETE'], label: '/groups/:group' },
  { pattern: /^\/schedules\/?$/i, methods: ['GET', 'HEAD'], label: '/schedules' },
  { pattern: /^\/schedules\/[^/]+\/?$/i, methods: ['GET', 'HEAD', 'PUT', 'DELETE'], label: '/schedules/:name' },
  { pattern: /^\/workers\/?$/i, methods: ['GET', 'HEAD'], label: '/workers' },
  { pattern: /^\/livez\/?$/i, methods: ['GET', 'HEAD'], label: '/livez' },
  { pattern: /^\/healthz\/?$/i, methods: ['GET', 'HEAD'], label: '/healthz' },
  { pattern: /^\/metrics\/?$/i, methods: ['GET', 'HEAD'], label: '/metrics' },
  { pattern: /^\/openapi\.json\/?$/i, methods: ['GET', 'HEAD'], label: '/openapi.json' },
  // The page, its scripts and styles, and the copy of the document it reads.
  { pattern: /^\/docs(?:\/[^/]+)?\/?$/i, methods: ['GET', 'HEAD'], label: '/docs' },
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
  // One label for its pages, static files and API: bull-board's own routes are no concern of the metric.
  label: 'admin',
});

/** The route a path is, as routing matches it; undefined for an unknown path. */
export function routeOf(path: string): RouteEntry | undefined {
  return ROUTES.find((entry) => entry.pattern.test(path));
}

/** The methods a known path takes, OPTIONS included; undefined for an unknown path. */
export function allowedMethods(path: string): readonly string[] | undefined {
  const route = routeOf(path);
  return route === undefined ? undefined : [...route.methods, 'OPTIONS'];
}

/** A path compared the way routing compares it, for exemptions that must follow routing. */
export function routingForm(path: string): string {
  const trimmed = path.toLowerCase().replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}
