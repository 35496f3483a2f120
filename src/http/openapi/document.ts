/**
 * Builds the OpenAPI 3.1 document of the API (`GET /openapi.json`) from the route table in
 * `routes.ts`, the request schemas the routes validate with (`../schemas.ts`), the answer schemas of
 * `schemas.ts` and the error catalogue. It depends on the deployment: body and batch limits, the
 * bounds of a task, and whether `API_KEY` is set (and `/metrics` public) are read from the options,
 * so the document tells what this service accepts, not what a default one would.
 */
import { z } from 'zod';
import { IDEMPOTENCY_KEY } from '../../idempotency/store.js';
import {
  bulkTasksSchema,
  groupSchema,
  groupSettingsSchema,
  MAX_DATA_DEPTH,
  scheduleNameSchema,
  taskSchema,
  type TaskLimits,
} from '../schemas.js';
import { scheduleSchema } from '../schedule-schemas.js';
import { createErrorDocs, errorBodySchema, type ErrorCode, type ErrorDoc } from './errors.js';
import type { Access, Answer, HeaderName, ParameterName, RouteDoc } from './route-doc.js';
import { ROUTE_DOCS } from './routes.js';
import { createAnswerSchemas } from './schemas.js';

export interface OpenApiOptions {
  readonly limits: TaskLimits;
  /** BULK_MAX. */
  readonly bulkMax: number;
  /** BODY_LIMIT_BYTES and BULK_BODY_LIMIT_BYTES. */
  readonly bodyLimitBytes: number;
  readonly bulkBodyLimitBytes: number;
  /** Whether API_KEY is set: then every route but the public ones needs it. */
  readonly apiKeyRequired: boolean;
  readonly metricsPublic: boolean;
  /** SCHEDULE_MIN_INTERVAL_MS. */
  readonly scheduleMinIntervalMs: number;
}

type Json = Readonly<Record<string, unknown>>;

export interface OpenApiOperation {
  readonly operationId: string;
  readonly tags: readonly string[];
  readonly summary: string;
  readonly parameters?: readonly Json[];
  readonly requestBody?: Json;
  readonly responses: Readonly<Record<string, Json>>;
  readonly security?: readonly Json[];
}

export interface OpenApiDocument {
  readonly openapi: '3.1.0';
  readonly info: Json;
  readonly tags: readonly Json[];
  readonly security?: readonly Json[];
  readonly paths: Readonly<Record<string, Readonly<Record<string, OpenApiOperation>>>>;
  readonly components: {
    readonly schemas: Readonly<Record<string, Json>>;
    readonly responses: Readonly<Record<string, Json>>;
    readonly parameters: Readonly<Record<string, Json>>;
    readonly headers: Readonly<Record<string, Json>>;
    readonly securitySchemes: Readonly<Record<string, Json>>;
  };
}

/** The version of the API contract, not of the package: it changes when the contract does. */
export const API_VERSION = '1.1.0';

const SCHEMAS = '#/components/schemas/';
const ref = (section: string, name: string) => ({ $ref: `#/components/${section}/${name}` });
const errorSchemaName = (code: string) => `Error_${code}`;

/** Converts a registry of named zod schemas; references between them point into components. */
function convert(registry: z.core.$ZodRegistry<{ id: string }>, params: z.core.ToJSONSchemaParams) {
  const { schemas } = z.toJSONSchema(registry, {
    ...params,
    uri: (id) => `${SCHEMAS}${id}`,
    override: (context) => {
      // zod bounds every integer by the safe range; it says nothing to a reader, so it is left out.
      const { jsonSchema } = context;
      if (jsonSchema.maximum === Number.MAX_SAFE_INTEGER) delete jsonSchema.maximum;
      if (jsonSchema.minimum === Number.MIN_SAFE_INTEGER) delete jsonSchema.minimum;
      params.override?.(context);
    },
  });
  return Object.fromEntries(Object.entries(schemas).map(([name, schema]) => [name, embedded(schema)]));
}

/** A schema as a part of the document, which sets the dialect once: without its own `$schema` and `$id`. */
function embedded(schema: z.core.JSONSchema.BaseSchema): Json {
  const rest: Record<string, unknown> = { ...schema };
  delete rest.$schema;
  delete rest.$id;
  return rest;
}

function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): Json {
  return embedded(z.toJSONSchema(schema, { io }));
}

/** The codes answered with `Retry-After`, sorted, as a phrase: `A`, `B` and `C`. */
function retryLaterCodes(errors: Readonly<Record<ErrorCode, ErrorDoc>>): string {
  const codes = Object.values(errors)
    .filter((doc) => doc.retryAfter)
    .map((doc) => `\`${doc.code}\``)
    .sort();
  return codes.length < 2 ? codes.join('') : `${codes.slice(0, -1).join(', ')} and ${codes.at(-1) ?? ''}`;
}

export function createOpenApiDocument(options: OpenApiOptions): OpenApiDocument {
  const { limits, apiKeyRequired } = options;
  const errors: Readonly<Record<ErrorCode, ErrorDoc>> = createErrorDocs({ bodyLimitBytes: options.bodyLimitBytes });
  const answers = createAnswerSchemas();

  // What a client sends, in the form the routes parse it: defaults are optional (io: input).
  const task = taskSchema(limits);
  const requests = z.registry<{ id: string }>();
  requests.add(task, { id: 'Task' });
  requests.add(bulkTasksSchema(limits, options.bulkMax, task), { id: 'BulkTasks' });
  requests.add(groupSettingsSchema(), { id: 'GroupSettings' });
  const schedule = scheduleSchema({ ...limits, minIntervalMs: options.scheduleMinIntervalMs });
  requests.add(schedule, { id: 'Schedule' });
  const requestSchemas = convert(requests, {
    io: 'input',
    // `data` is any object, checked by a refinement JSON Schema cannot see: its known keys are told here.
    override: ({ zodSchema, jsonSchema }) => {
      if (zodSchema === task.shape.data || zodSchema === schedule.shape.data)
        Object.assign(jsonSchema, dataKeys(limits));
    },
  });

  const responses = z.registry<{ id: string }>();
  for (const [name, schema] of Object.entries(answers)) responses.add(schema, { id: name });
  for (const doc of Object.values(errors)) responses.add(errorBodySchema(doc), { id: errorSchemaName(doc.code) });
  const answerSchemas = convert(responses, { io: 'output' });

  const security = (access: Access = 'key'): readonly Json[] | undefined => {
    if (!apiKeyRequired || access === 'key') return undefined;
    if (access === 'public' || (access === 'metrics' && options.metricsPublic)) return [];
    if (access === 'browser') return [{ bearer: [] }, { basic: [] }];
    return undefined;
  };

  const paths: Record<string, Record<string, OpenApiOperation>> = {};
  for (const route of ROUTE_DOCS) {
    (paths[route.path] ??= {})[route.method] = operation(route, {
      errors,
      security: security(route.access),
      keyRequired: apiKeyRequired && security(route.access)?.length !== 0,
      bodyLimitBytes: { body: options.bodyLimitBytes, bulk: options.bulkBodyLimitBytes },
    });
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'Bullpen',
      version: API_VERSION,
      summary: 'Tasks taken over REST and run on the least-loaded worker of a Node.js cluster.',
      description: describeApi(options),
      license: { name: 'MIT', identifier: 'MIT' },
    },
    tags: [
      { name: 'Tasks', description: 'Enqueue tasks.' },
      { name: 'Jobs', description: 'Follow, list, cancel and retry jobs.' },
      { name: 'Groups', description: 'Tenant groups: fair share between them, and their limits.' },
      { name: 'Schedules', description: 'Recurring jobs: one job per tick, pool-wide.' },
      { name: 'Cluster', description: 'Workers, health and metrics.' },
      { name: 'Documentation', description: 'This document, and the pages for people.' },
    ],
    ...(apiKeyRequired ? { security: [{ bearer: [] }] } : {}),
    paths,
    components: {
      schemas: { ...requestSchemas, ...answerSchemas },
      responses: {
        UnknownRoute: errorResponse([errors.NOT_FOUND], 'No such route (any path no route serves).', []),
        MethodNotAllowed: errorResponse([errors.METHOD_NOT_ALLOWED], 'A known path asked with another method.', [
          'Allow',
        ]),
        Options: {
          description: 'OPTIONS on any known path: the methods it takes.',
          headers: { Allow: ref('headers', 'Allow') },
          content: { 'application/json': { schema: { $ref: `${SCHEMAS}Allowed` } } },
        },
      },
      parameters: {
        JobId: {
          name: 'id',
          in: 'path',
          required: true,
          description: 'A job id as an enqueue answered it: `<workerId>~<token>`.',
          schema: { type: 'string', minLength: 1 },
          example: 'myhost-2~6f0cY2xk3QvB1sZp0mWq8A',
        },
        Group: {
          name: 'group',
          in: 'path',
          required: true,
          description: "A tenant group's name, as tasks give it in `group` (`default`: those enqueued without one).",
          schema: jsonSchemaOf(groupSchema(), 'input'),
          example: 'tenant-a',
        },
        ScheduleName: {
          name: 'name',
          in: 'path',
          required: true,
          description: "A schedule's name, chosen by whoever writes it; its jobs carry it (`schedule.name`).",
          schema: jsonSchemaOf(scheduleNameSchema(), 'input'),
          example: 'nightly-report',
        },
        IdempotencyKey: {
          name: 'Idempotency-Key',
          in: 'header',
          required: false,
          description:
            'A key of your choosing. Sent again with the same body within `IDEMPOTENCY_TTL_SECONDS`, the request ' +
            'answers 200 with the first answer and enqueues nothing; with another body, 422.',
          schema: { type: 'string', pattern: IDEMPOTENCY_KEY.source },
          example: 'order-1001',
        },
        Traceparent: {
          name: 'traceparent',
          in: 'header',
          required: false,
          description:
            'A W3C Trace Context parent: with tracing on (`OTEL_EXPORTER_OTLP_ENDPOINT`), the request, its ' +
            "enqueue and its jobs' attempts continue this trace; without it a new trace starts.",
          schema: { type: 'string', pattern: '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' },
          example: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        },
      } satisfies Record<ParameterName, Json>,
      headers: {
        Location: {
          description: 'Where to follow the job: `/jobs/{id}`.',
          required: true,
          schema: { type: 'string' },
          example: '/jobs/myhost-2~6f0cY2xk3QvB1sZp0mWq8A',
        },
        'Idempotent-Replayed': {
          description: 'Present on a replayed answer.',
          required: true,
          schema: { type: 'string', const: 'true' },
        },
        'Retry-After': {
          description: `Seconds to wait before trying again (on ${retryLaterCodes(errors)}).`,
          schema: { type: 'integer', minimum: 0 },
          example: 1,
        },
        Allow: {
          description: 'The methods the path takes.',
          required: true,
          schema: { type: 'string' },
          example: 'GET, HEAD, OPTIONS',
        },
        traceparent: {
          description:
            "With tracing on: the request's span, as W3C Trace Context, so that the caller can find the trace.",
          schema: { type: 'string' },
          example: '00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01',
        },
        'WWW-Authenticate': {
          description: '`Bearer`; `Basic realm="bullpen"` on the pages a browser opens.',
          required: true,
          schema: { type: 'string' },
          example: 'Bearer',
        },
      } satisfies Record<HeaderName, Json>,
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: apiKeyRequired
            ? 'The `API_KEY` the service runs with, as `Authorization: Bearer <key>`.'
            : 'Not required here: this service runs without `API_KEY`.',
        },
        basic: {
          type: 'http',
          scheme: 'basic',
          description: 'The `API_KEY` as the password (any user name), for the pages a person opens in a browser.',
        },
      },
    },
  };
}

interface OperationContext {
  readonly errors: Readonly<Record<ErrorCode, ErrorDoc>>;
  readonly security: readonly Json[] | undefined;
  /** Whether a request without the key is refused with 401. */
  readonly keyRequired: boolean;
  readonly bodyLimitBytes: { readonly body: number; readonly bulk: number };
}

function operation(route: RouteDoc, context: OperationContext): OpenApiOperation {
  const { errors } = context;
  const codes: ErrorCode[] = [
    ...(route.path.includes('{') ? (['MALFORMED_PATH'] as const) : []),
    ...(context.keyRequired ? (['UNAUTHORIZED'] as const) : []),
    ...route.errors,
    'INTERNAL',
  ];
  const byStatus = new Map<number, ErrorDoc[]>();
  for (const code of codes) {
    const doc = errors[code];
    byStatus.set(doc.status, [...(byStatus.get(doc.status) ?? []), doc]);
  }
  const responses: Record<string, Json> = {};
  for (const answer of route.answers) responses[String(answer.status)] = success(answer);
  for (const [status, docs] of [...byStatus].sort(([a], [b]) => a - b)) {
    const headers: HeaderName[] = [];
    if (docs.some((doc) => doc.retryAfter)) headers.push('Retry-After');
    if (status === 401) headers.push('WWW-Authenticate');
    responses[String(status)] = errorResponse(docs, undefined, headers);
  }

  const parameters: Json[] = [
    ...(route.parameters ?? []).map((name) => ref('parameters', name)),
    ...queryParameters(route),
  ];
  return {
    operationId: route.operationId,
    tags: [route.tag],
    summary: route.summary,
    ...(route.description === undefined ? {} : { description: route.description }),
    ...(parameters.length === 0 ? {} : { parameters }),
    ...(route.body === undefined
      ? {}
      : {
          requestBody: {
            required: true,
            description: `JSON (\`Content-Type: application/json\`, utf-8; it may be sent gzip, deflate or br encoded), at most ${context.bodyLimitBytes[route.body.limit]} bytes.`,
            content: {
              'application/json': { schema: { $ref: `${SCHEMAS}${route.body.schema}` }, example: route.body.example },
            },
          },
        }),
    responses,
    ...(context.security === undefined ? {} : { security: context.security }),
  };
}

function queryParameters(route: RouteDoc): Json[] {
  if (route.query === undefined) return [];
  const { schema, descriptions } = route.query;
  const properties = (jsonSchemaOf(schema, 'input').properties ?? {}) as Record<string, Json>;
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: 'query',
    required: false,
    ...(descriptions[name] === undefined ? {} : { description: descriptions[name] }),
    schema: property,
  }));
}

function headersOf(names: readonly HeaderName[]): Json {
  return Object.fromEntries(names.map((name) => [name, ref('headers', name)]));
}

function success(answer: Answer): Json {
  const headers = answer.headers === undefined ? {} : { headers: headersOf(answer.headers) };
  if ('empty' in answer) return { description: answer.description, ...headers };
  if ('text' in answer) {
    return {
      description: answer.description,
      ...headers,
      content: { [answer.text.mediaType]: { schema: { type: 'string' }, example: answer.text.example } },
    };
  }
  return {
    description: answer.description,
    ...headers,
    content: {
      'application/json': {
        schema: { $ref: `${SCHEMAS}${answer.schema}` },
        ...(answer.examples === undefined ? {} : { examples: answer.examples }),
      },
    },
  };
}

/** One status of error answers: the codes it can carry, each with its shape and an example. */
function errorResponse(
  docs: readonly ErrorDoc[],
  description: string | undefined,
  headers: readonly HeaderName[],
): Json {
  const refs = docs.map((doc) => ({ $ref: `${SCHEMAS}${errorSchemaName(doc.code)}` }));
  return {
    description: description ?? docs.map((doc) => `\`${doc.code}\`: ${doc.when}.`).join(' '),
    ...(headers.length === 0 ? {} : { headers: headersOf(headers) }),
    content: {
      'application/json': {
        schema: refs.length === 1 ? refs[0] : { oneOf: refs },
        // Summaries are plain text: a menu shows them as they are.
        examples: Object.fromEntries(
          docs.map((doc) => [
            doc.code,
            { summary: `${doc.code}: ${doc.when.replaceAll('`', '')}`, value: doc.example },
          ]),
        ),
      },
    },
  };
}

/** The keys of `data` the service itself reads, with the bounds the route's refinement checks. */
function dataKeys({ maxDurationMs, maxTimeoutMs }: TaskLimits): Json {
  return {
    description:
      `Any JSON object, handed to the job's handler; nested at most ${MAX_DATA_DEPTH} levels, and keys ` +
      '`__proto__`, `constructor` and `prototype` are refused at any depth. The built-in dummy reads the keys below.',
    properties: {
      durationMs: {
        type: 'integer',
        minimum: 0,
        maximum: maxDurationMs,
        description: 'How long the built-in dummy runs (`TASK_DURATION_MS` when absent).',
      },
      timeoutMs: {
        type: 'integer',
        minimum: 1,
        maximum: maxTimeoutMs,
        description: "A time limit for this job's attempts; `options.timeoutMs` is the newer spelling.",
      },
      fail: {
        anyOf: [{ type: 'boolean' }, { type: 'string', minLength: 1 }],
        description: '`true` or a message makes the dummy throw, to try retries and failures out.',
      },
    },
  };
}

function describeApi(options: OpenApiOptions): string {
  return [
    'Every answer is JSON but `/metrics` (Prometheus text), `/jobs/{id}/events` (Server-Sent Events) and the ' +
      'HTML pages. An error is `{ "error": "...", "code": "...", "details"?: ... }`, and never holds a stack ' +
      'trace or a Redis message; each operation lists the codes it can answer.',
    '',
    'On any path:',
    '',
    '- a path no route serves answers 404 `NOT_FOUND` (the path echoed up to 80 characters);',
    '- a known path asked with another method answers 405 `METHOD_NOT_ALLOWED`, with `Allow`;',
    '- `OPTIONS` on a known path answers 200 `{ "allow": [...] }` with `Allow`; every `GET` answers `HEAD` too;',
    "- a request Node's HTTP parser cannot read answers 400 `BAD_REQUEST`, and headers over 16 KiB answer 431 " +
      '`HEADERS_TOO_LARGE`, both in the same JSON shape.',
    '',
    options.apiKeyRequired
      ? 'This service runs with `API_KEY`: every route needs `Authorization: Bearer <key>` but those marked ' +
        'otherwise, and a request without it answers 401 `UNAUTHORIZED`.'
      : 'This service runs without `API_KEY`: no route needs a key.',
  ].join('\n');
}
