/**
 * `/groups`: the settings of tenant groups (issue 22), kept in Redis and applied by every process at
 * once, and what each group has waiting and running.
 * - `GET /groups/:group`: a group's settings (null where not set) and counts. Groups are not created:
 *   any valid name has a view, with zero counts and no settings until it has work or settings.
 * - `PUT /groups/:group`: merges the fields sent into the group's settings (a field not sent is kept,
 *   `null` removes it) and answers the view.
 * - `DELETE /groups/:group`: drops the group's settings and answers the view.
 * - `GET /groups`: the groups with work or settings, by name, a page at a time; the cursor is the
 *   last name of the page before.
 * After a change the process's releaser runs (`onChanged`): new settings may let held jobs start.
 * A PUT's merge is one step in Redis (group-set-12.lua): two PUTs of one group at once both apply.
 */
import { Router, type Request } from 'express';
import { z } from 'zod';
import { fromStore, ValidationError } from '../../errors.js';
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from '../../jobs/lister.js';
import type { GroupLedger, GroupView, RateLimit } from '../../ledger/groups.js';
import { requireJsonBody } from '../json-body.js';
import { createGroupSettingsSchema, describeIssues, groupSchema, pageLimitSchema } from '../schemas.js';

export interface GroupRouteOptions {
  readonly ledger: Pick<GroupLedger, 'view' | 'all' | 'setSettings' | 'changeSettings'>;
  /** Told after a group's settings changed: held jobs may start now (the process pokes its releaser). */
  readonly onChanged: () => void;
  /** GROUP_CONCURRENCY: the concurrency of a group without its own (0: none). */
  readonly defaultConcurrency: number;
}

export const groupListQuerySchema = z
  .object({
    limit: pageLimitSchema(MAX_LIST_LIMIT).optional(),
    cursor: groupSchema().optional(),
  })
  .strict();

const groupPathSchema = z.object({ group: groupSchema() });

/** A group as the API answers it. */
export interface GroupAnswer {
  readonly group: string;
  readonly concurrency: number | null;
  readonly rateLimit: RateLimit | null;
  readonly weight: number | null;
  readonly paused: boolean | null;
  /** The concurrency that applies: the group's own, else GROUP_CONCURRENCY; null when none does. */
  readonly effectiveConcurrency: number | null;
  readonly waiting: number;
  readonly running: number;
  readonly inflight: number;
}

function answerOf(view: GroupView, defaultConcurrency: number): GroupAnswer {
  const { concurrency, rateLimit, weight, paused } = view.settings;
  return {
    group: view.group,
    concurrency: concurrency ?? null,
    rateLimit: rateLimit === undefined ? null : { max: rateLimit.max, durationMs: rateLimit.durationMs },
    weight: weight ?? null,
    paused: paused ?? null,
    effectiveConcurrency: concurrency ?? (defaultConcurrency > 0 ? defaultConcurrency : null),
    waiting: view.waiting,
    running: view.running,
    inflight: view.inflight,
  };
}

/** The group a path names; a malformed name is refused like a malformed field, naming `group`. */
function groupOf(req: Request): string {
  const parsed = groupPathSchema.safeParse(req.params);
  if (!parsed.success) throw new ValidationError('Invalid group', { details: describeIssues(parsed.error) });
  return parsed.data.group;
}

export function groupsRouter({ ledger, onChanged, defaultConcurrency }: GroupRouteOptions): Router {
  const settingsSchema = createGroupSettingsSchema();
  const view = async (group: string) => answerOf(await fromStore(() => ledger.view(group)), defaultConcurrency);
  const router = Router();

  router.get('/groups', async (req, res) => {
    const parsed = groupListQuerySchema.safeParse(req.query);
    if (!parsed.success) throw new ValidationError('Invalid query', { details: describeIssues(parsed.error) });
    const { limit = DEFAULT_LIST_LIMIT, cursor } = parsed.data;
    const all = await fromStore(() => ledger.all());
    // Sorted by name: the page goes on after the cursor's name, whether or not that group is still listed.
    const after = cursor === undefined ? all : all.filter(({ group }) => group > cursor);
    const page = after.slice(0, limit);
    res.json({
      groups: page.map((group) => answerOf(group, defaultConcurrency)),
      nextCursor: after.length > limit ? (page.at(-1)?.group ?? null) : null,
    });
  });

  router.get('/groups/:group', async (req, res) => {
    res.json(await view(groupOf(req)));
  });

  router.put('/groups/:group', async (req, res) => {
    const group = groupOf(req);
    requireJsonBody(req);
    const parsed = settingsSchema.safeParse(req.body);
    if (!parsed.success) throw new ValidationError('Invalid group settings', { details: describeIssues(parsed.error) });
    await fromStore(() => ledger.changeSettings(group, parsed.data));
    onChanged();
    res.json(await view(group));
  });

  router.delete('/groups/:group', async (req, res) => {
    const group = groupOf(req);
    await fromStore(() => ledger.setSettings(group, undefined));
    onChanged();
    res.json(await view(group));
  });
  return router;
}
