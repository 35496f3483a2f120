/**
 * The form of one route's entry in the OpenAPI route table (`routes.ts`, with the groups' entries
 * in `group-routes.ts` and the schedules' in `schedule-routes.ts`): what the builder in
 * `document.ts` turns into an operation.
 */
import type { z } from 'zod';
import type { ErrorCode } from './errors.js';
import type { AnswerSchemas } from './schemas.js';

/** The request body schemas, which come from `../schemas.ts`. */
export type RequestSchemaName = 'Task' | 'BulkTasks' | 'GroupSettings' | 'Schedule';
export type AnswerSchemaName = keyof AnswerSchemas;

export type HeaderName =
  'Location' | 'Idempotent-Replayed' | 'Retry-After' | 'Allow' | 'WWW-Authenticate' | 'traceparent';
export type ParameterName = 'JobId' | 'IdempotencyKey' | 'Group' | 'ScheduleName' | 'Traceparent';
export type Tag = 'Tasks' | 'Jobs' | 'Groups' | 'Schedules' | 'Cluster' | 'Documentation';

/** Who may call a route when `API_KEY` is set. */
export type Access =
  /** The key, as `Authorization: Bearer <key>`. */
  | 'key'
  /** Anyone. */
  | 'public'
  /** Anyone with `METRICS_PUBLIC=true`, the key otherwise. */
  | 'metrics'
  /** The key, as Bearer or as the password of HTTP Basic: a page a person opens in a browser. */
  | 'browser';

/** A success answer: a JSON body of a named shape, or a body that is not JSON. */
export type Answer = {
  readonly status: number;
  readonly description: string;
  readonly headers?: readonly HeaderName[];
} & (
  | {
      readonly schema: AnswerSchemaName;
      /** Named examples of the body, when the schema's own example does not tell enough. */
      readonly examples?: Readonly<Record<string, { readonly summary: string; readonly value: unknown }>>;
    }
  | { readonly text: { readonly mediaType: string; readonly example: string } }
  /** No body at all (204). */
  | { readonly empty: true }
);

export interface RouteDoc {
  readonly method: 'get' | 'put' | 'post' | 'delete';
  /** The OpenAPI path: `{id}` for a path parameter. */
  readonly path: string;
  readonly operationId: string;
  readonly tag: Tag;
  readonly summary: string;
  readonly description?: string;
  /** The key, unless said otherwise. */
  readonly access?: Access;
  readonly parameters?: readonly ParameterName[];
  /** Query parameters: one per property of the schema the route parses its query with. */
  readonly query?: {
    readonly schema: z.ZodObject;
    readonly descriptions: Readonly<Record<string, string>>;
  };
  readonly body?: {
    readonly schema: RequestSchemaName;
    /** The body limit that applies: `BODY_LIMIT_BYTES`, or `BULK_BODY_LIMIT_BYTES` for a batch. */
    readonly limit: 'body' | 'bulk';
    readonly example: unknown;
  };
  readonly answers: readonly Answer[];
  /** The error codes the route itself can answer; see `errors.ts`. */
  readonly errors: readonly ErrorCode[];
}
