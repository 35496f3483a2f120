/**
 * The OpenAPI document: valid OpenAPI 3.1 (by @apidevtools/swagger-parser) for every kind of
 * deployment, in step with the route table (a route without documentation fails here), its examples
 * valid by the very schemas it is generated from, and built from the deployment's settings. Then, on
 * the in-process app against a real Redis: `/openapi.json` serves it behind the API key, and `/docs`
 * serves a page whose scripts, styles and document all come from the service itself.
 * `openapi-conformance.test.ts` checks the document against the service's real answers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import SwaggerParser from '@apidevtools/swagger-parser';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { createOpenApiDocument, type OpenApiDocument, type OpenApiOptions } from '../../src/http/openapi/document.js';
import { createErrorDocs, errorBodySchema } from '../../src/http/openapi/errors.js';
import { ROUTE_DOCS } from '../../src/http/openapi/routes.js';
import { createAnswerSchemas } from '../../src/http/openapi/schemas.js';
import { ROUTES } from '../../src/http/route-table.js';
import { bulkTasksSchema, groupSettingsSchema, taskSchema } from '../../src/http/schemas.js';
import { scheduleSchema } from '../../src/http/schedule-schemas.js';
import { startApp, type StartedApp } from '../support/in-process-app.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';

const config = loadConfig({ QUEUE_PREFIX: 'openapi' });
const KEY = 'openapi-test-key-0123456789abcdef';

/** The settings the in-process app runs with (see test/support/in-process-app.ts). */
const SETTINGS: OpenApiOptions = {
  limits: { maxDurationMs: config.maxTaskDurationMs, maxTimeoutMs: config.jobTimeoutMs },
  bulkMax: config.bulkMax,
  bodyLimitBytes: config.bodyLimitBytes,
  bulkBodyLimitBytes: config.bulkBodyLimitBytes,
  apiKeyRequired: true,
  metricsPublic: false,
  scheduleMinIntervalMs: config.scheduleMinIntervalMs,
};

/** Documented paths that the route table does not hold, each with the reason. */
const ROUTED_ELSEWHERE: ReadonlyMap<string, string> = new Map([
  ['/admin/queues', 'the optional queue dashboard (ADMIN_UI) answers its own paths; see ADMIN_ROUTE'],
]);

/** A path that the OpenAPI path template matches, for matching against the route table's patterns. */
const sample = (template: string) => template.replace(/\{[^}]+\}/g, 'x~y');

function operations(document: OpenApiDocument) {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]) => ({ path, method: method.toUpperCase(), operation })),
  );
}

describe('the OpenAPI document', () => {
  test('is valid OpenAPI 3.1 with and without API_KEY, and with /metrics public', async () => {
    for (const apiKeyRequired of [true, false]) {
      for (const metricsPublic of [true, false]) {
        const document = createOpenApiDocument({ ...SETTINGS, apiKeyRequired, metricsPublic });
        assert.equal(document.openapi, '3.1.0');
        // The validator dereferences in place: it gets a copy.
        await SwaggerParser.validate(structuredClone(document) as never);
      }
    }
  });

  test('documents every route of the route table, with exactly the methods it takes', () => {
    const documented = operations(createOpenApiDocument(SETTINGS));
    for (const route of ROUTES) {
      const here = documented.filter(({ path }) => route.pattern.test(sample(path)));
      assert.notEqual(here.length, 0, `${String(route.pattern)} is routed but not documented`);
      const methods = new Set(here.map(({ method }) => method));
      // Every GET answers HEAD too, as Express does; the document leaves HEAD implied.
      if (methods.has('GET')) methods.add('HEAD');
      assert.deepEqual([...methods].sort(), [...route.methods].sort(), String(route.pattern));
    }
    for (const { path, method } of documented) {
      if (ROUTED_ELSEWHERE.has(path)) continue;
      const route = ROUTES.find((entry) => entry.pattern.test(sample(path)));
      assert.ok(route?.methods.includes(method), `${method} ${path} is documented but not routed`);
    }
  });

  test('every operation has a unique id, a summary, a success answer and the 500', () => {
    const documented = operations(createOpenApiDocument(SETTINGS));
    const ids = documented.map(({ operation }) => operation.operationId);
    assert.equal(new Set(ids).size, ids.length);
    for (const { path, method, operation } of documented) {
      const statuses = Object.keys(operation.responses);
      assert.ok(operation.summary.length > 0, `${method} ${path}`);
      assert.ok(
        statuses.some((status) => status.startsWith('2')),
        `${method} ${path} has no success answer`,
      );
      assert.ok(statuses.includes('500'), `${method} ${path} lacks the 500`);
      if (path.includes('{')) assert.ok(statuses.includes('400'), `${method} ${path} lacks MALFORMED_PATH`);
    }
  });

  test('every example is valid by the schema it illustrates', () => {
    const task = taskSchema(SETTINGS.limits);
    const bodies = {
      Task: task,
      BulkTasks: bulkTasksSchema(SETTINGS.limits, SETTINGS.bulkMax, task),
      GroupSettings: groupSettingsSchema(),
      Schedule: scheduleSchema({ ...SETTINGS.limits, minIntervalMs: SETTINGS.scheduleMinIntervalMs }),
    };
    const answers = createAnswerSchemas();
    for (const route of ROUTE_DOCS) {
      if (route.body !== undefined) {
        const parsed = bodies[route.body.schema].safeParse(route.body.example);
        assert.ok(parsed.success, `${route.method} ${route.path}: ${parsed.error?.message}`);
      }
      for (const answer of route.answers) {
        if ('text' in answer || 'empty' in answer) continue;
        for (const [name, example] of Object.entries(answer.examples ?? {})) {
          const parsed = answers[answer.schema].safeParse(example.value);
          assert.ok(parsed.success, `${route.method} ${route.path} ${answer.status} ${name}: ${parsed.error?.message}`);
        }
      }
    }
    for (const [name, schema] of Object.entries(answers)) {
      const examples = (schema.meta()?.examples ?? []) as unknown[];
      for (const example of examples) {
        const parsed = schema.safeParse(example);
        assert.ok(parsed.success, `${name}: ${parsed.error?.message}`);
      }
    }
    for (const doc of Object.values(createErrorDocs({ bodyLimitBytes: SETTINGS.bodyLimitBytes }))) {
      const parsed = errorBodySchema(doc).safeParse(doc.example);
      assert.ok(parsed.success, `${doc.code}: ${parsed.error?.message}`);
    }
  });

  test("is built from the deployment's settings", () => {
    const limits = { maxDurationMs: 1234, maxTimeoutMs: 5678 };
    const document = createOpenApiDocument({ ...SETTINGS, limits, bulkMax: 7, bodyLimitBytes: 999 });
    const schemas = document.components.schemas as Record<
      string,
      { properties: Record<string, Record<string, never>> }
    >;
    const data = schemas.Task?.properties.data as unknown as { properties: Record<string, { maximum: number }> };
    assert.equal(data.properties.durationMs?.maximum, 1234);
    assert.equal(data.properties.timeoutMs?.maximum, 5678);
    assert.equal((schemas.BulkTasks?.properties.tasks as unknown as { maxItems: number }).maxItems, 7);
    const enqueue = document.paths['/enqueue-task']?.post;
    assert.match(String(enqueue?.requestBody?.description), /at most 999 bytes/);
  });

  test('asks for the key only where the service does', () => {
    const security = (document: OpenApiDocument, path: string) =>
      document.paths[path]?.get?.security ?? document.security;
    const keyed = createOpenApiDocument(SETTINGS);
    assert.deepEqual(keyed.security, [{ bearer: [] }]);
    assert.deepEqual(security(keyed, '/healthz'), []);
    assert.deepEqual(security(keyed, '/metrics'), [{ bearer: [] }]);
    assert.deepEqual(security(keyed, '/docs'), [{ bearer: [] }, { basic: [] }]);
    assert.ok(keyed.paths['/workers']?.get?.responses['401'], 'a keyed route answers 401');
    assert.equal(keyed.paths['/healthz']?.get?.responses['401'], undefined, 'an open route never answers 401');

    const metricsOpen = createOpenApiDocument({ ...SETTINGS, metricsPublic: true });
    assert.deepEqual(security(metricsOpen, '/metrics'), []);

    const open = createOpenApiDocument({ ...SETTINGS, apiKeyRequired: false });
    assert.equal(open.security, undefined);
    for (const { operation } of operations(open)) assert.equal(operation.responses['401'], undefined);
  });
});

describe('GET /openapi.json and GET /docs', () => {
  let redis: TestRedis;
  let app: StartedApp;
  const bearer = { authorization: `Bearer ${KEY}` };
  const get = (path: string, headers: Record<string, string> = bearer, method = 'GET') =>
    fetch(`${app.url}${path}`, { method, headers, signal: AbortSignal.timeout(10_000) });

  before(async () => {
    redis = await startRedis();
    app = await startApp(redis.url, { prefix: config.prefix, logger: pino({ level: 'silent' }), apiKey: KEY });
  });

  after(async () => {
    await app?.close();
    await redis?.stop();
  });

  test('serves the document of its own settings, behind the API key', async () => {
    const response = await get('/openapi.json');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await response.json(), JSON.parse(JSON.stringify(createOpenApiDocument(SETTINGS))));
    const copy = await get('/docs/openapi.json');
    assert.deepEqual(await copy.json(), JSON.parse(JSON.stringify(createOpenApiDocument(SETTINGS))));

    const refused = await get('/openapi.json', {});
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { code: string }).code, 'UNAUTHORIZED');
    const page = await get('/docs', {});
    assert.equal(page.status, 401);
    await page.arrayBuffer();
  });

  test('/docs is a page whose every script, style and document the service serves itself', async () => {
    const page = await get('/docs');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const html = await page.text();
    const linked = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1] as string);
    assert.ok(linked.length >= 3, html);
    const types: Record<string, RegExp> = { css: /^text\/css/, js: /javascript/, png: /^image\/png/ };
    for (const path of linked) {
      assert.match(path, /^\/docs\//, 'nothing comes from elsewhere');
      const asset = await get(path);
      assert.equal(asset.status, 200, path);
      const type = types[path.split('.').pop() ?? ''];
      if (type) assert.match(asset.headers.get('content-type') ?? '', type, path);
      const text = await asset.text();
      if (path.endsWith('init.js')) {
        assert.match(text, /url: '\/docs\/openapi\.json'/);
        assert.match(text, /validatorUrl: null/, 'no document is sent to an outside validator');
      }
    }
    const head = await get('/docs', bearer, 'HEAD');
    assert.equal(head.status, 200);
    await head.arrayBuffer();

    const missing = await get('/docs/index.html');
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { code: string }).code, 'NOT_FOUND');
  });

  test('a browser given the key as HTTP Basic loads the page, its scripts and the document', async () => {
    const basic = { authorization: `Basic ${Buffer.from(`anyone:${KEY}`).toString('base64')}` };
    for (const path of ['/docs', '/docs/swagger-ui-bundle.js', '/docs/openapi.json']) {
      const response = await get(path, basic);
      assert.equal(response.status, 200, path);
      await response.arrayBuffer();
    }
    const challenge = await get('/docs', {});
    assert.match(challenge.headers.get('www-authenticate') ?? '', /^Basic /);
    await challenge.arrayBuffer();
  });
});
