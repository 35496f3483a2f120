/**
 * The OTEL_* settings (src/config/tracing-config.ts) as `loadConfig` parses them: tracing off unless an
 * OTLP endpoint is given, the standard ways to turn it off again, and refusals that name the variable.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config/config.js';
import type { TracingConfig } from '../../src/tracing/tracing.js';
import { assertRejects } from '../support/config-errors.js';

const ENDPOINT = 'http://collector:4318';

/** The tracing settings of `env`; fails when tracing is off. */
function tracingOf(env: Record<string, string>): TracingConfig {
  const { tracing } = loadConfig(env);
  assert.ok(tracing, `tracing on with ${JSON.stringify(env)}`);
  return tracing;
}

describe('tracing configuration (OTEL_*)', () => {
  test('off by default, and with an empty endpoint', () => {
    assert.equal(loadConfig({}).tracing, undefined);
    assert.equal(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: '' }).tracing, undefined);
    assert.equal(loadConfig({ OTEL_SERVICE_NAME: 'named', OTEL_TRACES_SAMPLER: 'always_on' }).tracing, undefined);
  });

  test('on with OTEL_EXPORTER_OTLP_ENDPOINT: spans go to its /v1/traces, with the defaults', () => {
    assert.deepEqual(tracingOf({ OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT }), {
      url: `${ENDPOINT}/v1/traces`,
      headers: {},
      serviceName: 'bullpen',
      resourceAttributes: {},
      sampler: 'parentbased_always_on',
      samplerRatio: 1,
      batchDelayMs: 5_000,
    });
    assert.equal(tracingOf({ OTEL_EXPORTER_OTLP_ENDPOINT: `${ENDPOINT}/base/` }).url, `${ENDPOINT}/base/v1/traces`);
  });

  test('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as it is, over the general endpoint', () => {
    const url = 'https://traces.example:4318/custom/path';
    assert.equal(tracingOf({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: url }).url, url);
    assert.equal(
      tracingOf({ OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: url }).url,
      url,
    );
  });

  test('OTEL_SDK_DISABLED=true and OTEL_TRACES_EXPORTER=none turn it off', () => {
    const on = { OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT };
    assert.equal(loadConfig({ ...on, OTEL_SDK_DISABLED: 'true' }).tracing, undefined);
    assert.equal(loadConfig({ ...on, OTEL_TRACES_EXPORTER: 'none' }).tracing, undefined);
    assert.equal(
      loadConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: ENDPOINT, OTEL_SDK_DISABLED: 'true' }).tracing,
      undefined,
    );
    assert.ok(loadConfig({ ...on, OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'otlp' }).tracing);
  });

  test('headers and resource attributes: key=value lists, values percent-decoded', () => {
    const tracing = tracingOf({
      OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT,
      OTEL_EXPORTER_OTLP_HEADERS: 'api-key=secret%20one, x-tenant=t1,',
      // The traces' own headers add to the general ones, and win where both name one.
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-tenant=t2',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,team=a%2Cb',
      OTEL_SERVICE_NAME: 'jobs-api',
    });
    assert.deepEqual(tracing.headers, { 'api-key': 'secret one', 'x-tenant': 't2' });
    assert.deepEqual(tracing.resourceAttributes, { 'deployment.environment': 'prod', team: 'a,b' });
    assert.equal(tracing.serviceName, 'jobs-api');
  });

  test('the sampler, its ratio and the batch delay', () => {
    const tracing = tracingOf({
      OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT,
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_BSP_SCHEDULE_DELAY: '200',
    });
    assert.equal(tracing.sampler, 'parentbased_traceidratio');
    assert.equal(tracing.samplerRatio, 0.25);
    assert.equal(tracing.batchDelayMs, 200);
    assert.equal(
      tracingOf({ OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT, OTEL_TRACES_SAMPLER: 'always_off' }).sampler,
      'always_off',
    );
  });

  test('http/json is the protocol taken; another is refused, naming its variable', () => {
    const on = { OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT };
    assert.ok(loadConfig({ ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).tracing);
    assert.ok(loadConfig({ ...on, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' }).tracing);
    assertRejects({ ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' }, 'OTEL_EXPORTER_OTLP_PROTOCOL');
    assertRejects({ ...on, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' }, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL');
  });

  test('bad values are refused, naming their variable', () => {
    const on = { OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT };
    assertRejects({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, 'OTEL_EXPORTER_OTLP_ENDPOINT');
    assertRejects(
      { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'ftp://collector/v1/traces' },
      'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
    );
    assertRejects({ ...on, OTEL_EXPORTER_OTLP_HEADERS: 'api-key' }, 'OTEL_EXPORTER_OTLP_HEADERS');
    assertRejects({ ...on, OTEL_RESOURCE_ATTRIBUTES: 'team=%E0%A4%A' }, 'OTEL_RESOURCE_ATTRIBUTES');
    assertRejects({ ...on, OTEL_TRACES_SAMPLER: 'sometimes' }, 'OTEL_TRACES_SAMPLER');
    assertRejects({ ...on, OTEL_TRACES_SAMPLER_ARG: '1.5' }, 'OTEL_TRACES_SAMPLER_ARG');
    assertRejects({ ...on, OTEL_TRACES_EXPORTER: 'zipkin' }, 'OTEL_TRACES_EXPORTER');
    assertRejects({ ...on, OTEL_SDK_DISABLED: 'yes' }, 'OTEL_SDK_DISABLED');
    assertRejects({ ...on, OTEL_BSP_SCHEDULE_DELAY: 'soon' }, 'OTEL_BSP_SCHEDULE_DELAY');
  });
});
