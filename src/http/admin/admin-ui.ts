/**
 * The queue dashboard at /admin/queues: bull-board's UI over the BullMQ queue of every worker id, so
 * that an operator can look at jobs (waiting, running, delayed, failed with their reasons and logs)
 * from a browser instead of redis-cli.
 *
 * It is read-only, on two levels. A job changed behind the service's back (retried, removed,
 * promoted, added, a queue paused or emptied) would bypass the load ledger, whose reservations would
 * then no longer match what BullMQ holds. So every queue is given to bull-board in its read-only
 * mode, which hides the actions and refuses them in its API, and any request other than GET and HEAD
 * is refused here with 405 before bull-board sees it, whatever the UI sends.
 *
 * The queues are those of every worker id the ledger knows (registered, or retired and not yet
 * forgotten), plus the `scheduled` queue of delayed jobs. Workers join over time: the list is read
 * again, at most once every `refreshMs`, when a request for the dashboard's API comes in. The queue
 * handles come from the process's registry, on its connection: a request opens no connection.
 *
 * `@bull-board/api` is loaded on the first request, not at start-up: its schemas take tens of
 * milliseconds to load, which every process would pay on every start for a page that is
 * seldom opened. Only its light Express adapter is loaded up front, to be mounted.
 */
import type { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import express, { type Express, type RequestHandler } from 'express';
import { fromStore, MethodNotAllowedError, QueueUnavailableError } from '../../errors.js';
import type { Logger } from '../../logging/logger.js';
import { DELAYED_QUEUE, HELD_QUEUE } from '../../contracts/names.js';
import type { QueueRegistry } from '../../queue/queues.js';
import { ADMIN_QUEUES_PATH, ADMIN_ROUTE } from '../route-table.js';

/** How long a list of worker ids is shown before it is read again. */
const DEFAULT_REFRESH_MS = 2_000;

export interface AdminUiOptions {
  /** Every worker id whose queue to show (the ledger's registered and retired ids). */
  readonly workerIds: () => Promise<readonly string[]>;
  readonly queues: Pick<QueueRegistry, 'forWorker'>;
  readonly logger: Logger;
  /** How long a read list of worker ids is used before it is read again; 2 s by default. */
  readonly refreshMs?: number;
}

export interface AdminUi {
  /** Where the dashboard is mounted. */
  readonly path: string;
  /**
   * An Express app rather than a router, so that `app.use` mounts it as one: bull-board renders its
   * page with views of its own app.
   */
  readonly router: Express;
}

/** The loaded board: shows the queues of the given worker ids, and only those. */
interface Board {
  show(workerIds: readonly string[]): void;
}

/**
 * bull-board's Express adapter with two changes: a failed API call goes on to the service's own error
 * handler (a Redis failure answers 503 `QUEUE_UNAVAILABLE` and is logged at warn, as on every other
 * route) instead of bull-board's, which would echo the error's text; and its app is typed.
 */
class DashboardAdapter extends ExpressAdapter {
  override setErrorHandler(): this {
    // Thrown inside bull-board's error middleware, it reaches the next error handler: the app's.
    return super.setErrorHandler((error) => {
      throw new QueueUnavailableError(error);
    });
  }

  /**
   * bull-board's page, less its link to Google Fonts: the service makes no request outside itself, and
   * offline the link failed on every view. Its styles name system fonts after IBM Plex, which then apply.
   */
  override setEntryRoute(route: EntryRoute): this {
    const render: RequestHandler = (_req, res, next) => {
      const { name, params } = route.handler({ basePath: this.basePath, uiConfig: this.uiConfig });
      res.render(name, params, (error: Error | null, html: string) => {
        if (error) next(error);
        else res.type('html').send(withoutExternalLinks(html));
      });
    };
    // bull-board's entry route is its page, which a browser asks for with GET (and HEAD).
    for (const path of Array.isArray(route.route) ? route.route : [route.route]) this.app.get(path, render);
    return this;
  }

  get expressApp(): Express {
    return this.app;
  }
}

type EntryRoute = Parameters<ExpressAdapter['setEntryRoute']>[0];

/** Drops every `<link>` to another origin (bull-board's is Google Fonts): the page loads only from the service. */
function withoutExternalLinks(html: string): string {
  return html.replace(/<link\b[^>]*\bhref="(?:https?:)?\/\/[^"]*"[^>]*>\s*/gi, '');
}

/** A sub-app with the parent's hygiene: no X-Powered-By, no ETag. */
function quiet(app: Express): Express {
  return app.disable('x-powered-by').set('etag', false);
}

async function loadBoard(
  serverAdapter: ExpressAdapter,
  queues: Pick<QueueRegistry, 'forWorker'>,
  logger: Logger,
): Promise<Board> {
  const [{ createBullBoard }, { BullMQAdapter: QueueAdapter }] = await Promise.all([
    import('@bull-board/api'),
    import('@bull-board/api/bullMQAdapter'),
  ]);
  const adapters = new Map<string, BullMQAdapter>();
  const adapterFor = (workerId: string): BullMQAdapter => {
    let adapter = adapters.get(workerId);
    if (!adapter) {
      adapter = new QueueAdapter(queues.forWorker(workerId), { readOnlyMode: true, allowRetries: false });
      adapters.set(workerId, adapter);
    }
    return adapter;
  };
  // Created with a read-only queue: bull-board decides once, from the queues it starts with, whether
  // the board as a whole is read-only.
  const board = createBullBoard({
    queues: [adapterFor(DELAYED_QUEUE), adapterFor(HELD_QUEUE)],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Bullpen' } },
  });
  logger.debug('queue dashboard loaded');
  return {
    show(workerIds) {
      board.replaceQueues(workerIds.map(adapterFor));
      for (const id of adapters.keys()) if (!workerIds.includes(id)) adapters.delete(id);
    },
  };
}

export function createAdminUi({ workerIds, queues, logger, refreshMs = DEFAULT_REFRESH_MS }: AdminUiOptions): AdminUi {
  const serverAdapter = new DashboardAdapter();
  serverAdapter.setBasePath(ADMIN_QUEUES_PATH);
  // bull-board adds its routes to this app when it is loaded, before any request goes in.
  const dashboard = quiet(serverAdapter.expressApp);
  let loading: Promise<Board> | undefined;
  const board = () => (loading ??= loadBoard(serverAdapter, queues, logger));

  // The ids last shown and when they were read (monotonic clock); one read at a time.
  let shown: readonly string[] = [DELAYED_QUEUE, HELD_QUEUE];
  let readAt = Number.NEGATIVE_INFINITY;
  let reading: Promise<void> | undefined;
  const refresh = async (): Promise<void> => {
    if (performance.now() - readAt < refreshMs) return;
    reading ??= (async () => {
      const ids = [...new Set([...(await fromStore(workerIds)), DELAYED_QUEUE, HELD_QUEUE])].sort();
      readAt = performance.now();
      if (ids.join('\n') === shown.join('\n')) return;
      (await board()).show(ids);
      logger.debug({ queues: ids.length }, 'dashboard queues refreshed');
      shown = ids;
    })().finally(() => (reading = undefined));
    await reading;
  };

  const allow = [...ADMIN_ROUTE.methods, 'OPTIONS'];
  const host = quiet(express());
  host.use((req, res, next) => {
    if (ADMIN_ROUTE.methods.includes(req.method)) {
      next();
      return;
    }
    res.set('Allow', allow.join(', '));
    if (req.method === 'OPTIONS') {
      res.status(200).json({ allow });
      return;
    }
    next(new MethodNotAllowedError(req.method, allow));
  });
  host.use(async (_req, _res, next) => {
    await board();
    next();
  });
  // Only the API lists queues: the page and its static files are served without a Redis read.
  host.use('/api', async (_req, _res, next) => {
    await refresh();
    next();
  });
  host.use(dashboard);
  return { path: ADMIN_QUEUES_PATH, router: host };
}
