/**
 * The standard OpenTelemetry settings Bullpen understands (issue 24), parsed with the rest of the
 * configuration: tracing is off unless an OTLP endpoint is given, and `OTEL_SDK_DISABLED=true` or
 * `OTEL_TRACES_EXPORTER=none` turn it off again. Spans go out as OTLP over HTTP, JSON; another
 * protocol is refused at start-up rather than silently not honoured.
 */
import { z } from 'zod';
import { SAMPLERS, type TracingConfig } from '../tracing/tracing.js';

/** `key=value` pairs separated by commas, values percent-decoded: OTEL_RESOURCE_ATTRIBUTES and the headers. */
const keyValueList = z.string().transform((text, context) => {
  const pairs: Record<string, string> = {};
  for (const item of text.split(',')) {
    if (item.trim() === '') continue;
    const at = item.indexOf('=');
    const key = at < 0 ? '' : item.slice(0, at).trim();
    if (key === '') {
      context.addIssue({ code: 'custom', message: `"${item.trim()}" is not key=value` });
      return z.NEVER;
    }
    try {
      pairs[key] = decodeURIComponent(item.slice(at + 1).trim());
    } catch {
      context.addIssue({ code: 'custom', message: `the value of ${key} is not percent-encoded correctly` });
      return z.NEVER;
    }
  }
  return pairs;
});

const url = z.url({ protocol: /^https?$/ }).describe('an http or https URL');

const flag = z.enum(['true', 'false']).transform((value) => value === 'true');

/** The OTEL_* variables, spread into the configuration's schema. */
export const TRACING_ENV = {
  OTEL_SDK_DISABLED: flag.default(false),
  OTEL_TRACES_EXPORTER: z.enum(['otlp', 'none']).default('otlp'),
  OTEL_EXPORTER_OTLP_ENDPOINT: url.optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: url.optional(),
  OTEL_EXPORTER_OTLP_PROTOCOL: z.literal('http/json').optional(),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: z.literal('http/json').optional(),
  OTEL_EXPORTER_OTLP_HEADERS: keyValueList.optional(),
  OTEL_EXPORTER_OTLP_TRACES_HEADERS: keyValueList.optional(),
  OTEL_SERVICE_NAME: z
    .string()
    .min(1)
    .max(256)
    .refine((name) => ![...name].some((char) => char < ' ' || char === '\u007f'), 'must be printable characters')
    .default('bullpen'),
  OTEL_RESOURCE_ATTRIBUTES: keyValueList.optional(),
  OTEL_TRACES_SAMPLER: z.enum(SAMPLERS).default('parentbased_always_on'),
  OTEL_TRACES_SAMPLER_ARG: z
    .string()
    .trim()
    .regex(/^(0(\.\d+)?|1(\.0+)?)$/, 'must be a number from 0 to 1')
    .transform(Number)
    .optional(),
  OTEL_BSP_SCHEDULE_DELAY: z
    .string()
    .trim()
    .regex(/^\d{1,7}$/, 'must be a whole number of ms')
    .transform(Number)
    .default(5_000),
} as const;

type TracingEnv = z.output<z.ZodObject<typeof TRACING_ENV>>;

/** Tracing's settings, or undefined when tracing is off. */
export function tracingConfigOf(env: TracingEnv): TracingConfig | undefined {
  if (env.OTEL_SDK_DISABLED || env.OTEL_TRACES_EXPORTER === 'none') return undefined;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const tracesUrl =
    env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
    (base === undefined ? undefined : `${base.replace(/\/+$/, '')}/v1/traces`);
  if (tracesUrl === undefined) return undefined;
  return Object.freeze({
    url: tracesUrl,
    headers: Object.freeze({ ...env.OTEL_EXPORTER_OTLP_HEADERS, ...env.OTEL_EXPORTER_OTLP_TRACES_HEADERS }),
    serviceName: env.OTEL_SERVICE_NAME,
    resourceAttributes: Object.freeze({ ...env.OTEL_RESOURCE_ATTRIBUTES }),
    sampler: env.OTEL_TRACES_SAMPLER,
    samplerRatio: env.OTEL_TRACES_SAMPLER_ARG ?? 1,
    batchDelayMs: env.OTEL_BSP_SCHEDULE_DELAY,
  });
}
