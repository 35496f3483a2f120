/**
 * Tracing as the rest of the service sees it (issue 24): spans around Bullpen's own steps, a job's
 * trace context carried in W3C form, and the active span's ids for log lines. This module holds the
 * interface and the implementation used when tracing is off, which does nothing and imports nothing:
 * the OpenTelemetry SDK is loaded only when tracing is on (otel.ts, imported on demand), so that a
 * service without tracing neither loads it nor pays for it per job.
 */

/** A trace context in W3C Trace Context form, as a request header carries it and a job stores it. */
export interface TraceCarrier {
  readonly traceparent: string;
  readonly tracestate?: string | undefined;
}

export type SpanKind = 'server' | 'client' | 'producer' | 'consumer' | 'internal';

export type Attributes = Readonly<Record<string, string | number | boolean | readonly string[] | undefined>>;

export interface SpanOptions {
  readonly kind?: SpanKind | undefined;
  readonly attributes?: Attributes | undefined;
  /**
   * The span's parent: a carrier from a request or a job, or, when undefined, the span active where
   * the span starts (none: a new trace).
   */
  readonly parent?: TraceCarrier | undefined;
  /** Spans this one is linked to without being their child (delayed or fanned-out work). */
  readonly links?: readonly TraceCarrier[] | undefined;
}

/** The span a step runs in. */
export interface ActiveSpan {
  setAttributes(attributes: Attributes): void;
  addEvent(name: string, attributes?: Attributes): void;
  /** Marks the span failed with the error (recorded as an exception event). */
  fail(error: unknown): void;
  /** This span's context, to store on a job or answer in `traceparent`; undefined when tracing is off. */
  carrier(): TraceCarrier | undefined;
}

export interface Tracing {
  readonly enabled: boolean;
  /** Runs `step` in a new span, ended when `step` settles (failed if it throws). */
  inSpan<T>(name: string, options: SpanOptions, step: (span: ActiveSpan) => Promise<T>): Promise<T>;
  /** An event on the span active here, if any. */
  addEvent(name: string, attributes?: Attributes): void;
  /** Attributes of the span active here, if any (what a step learns part-way, such as its worker). */
  annotate(attributes: Attributes): void;
  /** The ids of the span active here, for a log line: `{ trace_id, span_id }`, or `{}`. */
  logFields(): Readonly<Record<string, string>>;
  /** Sends the spans not yet exported, then stops. */
  shutdown(): Promise<void>;
}

/** The sampler of OTEL_TRACES_SAMPLER, with its ratio (OTEL_TRACES_SAMPLER_ARG) where it takes one. */
export const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
export type SamplerName = (typeof SAMPLERS)[number];

/** What tracing is configured with: the standard OTEL_* settings, parsed once (config/config.ts). */
export interface TracingConfig {
  /** Where spans are sent: OTLP over HTTP, JSON (`…/v1/traces`). */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly serviceName: string;
  readonly resourceAttributes: Readonly<Record<string, string>>;
  readonly sampler: SamplerName;
  /** The ratio of the `traceidratio` samplers, 0 to 1. */
  readonly samplerRatio: number;
  /** How long spans wait to be sent in a batch (OTEL_BSP_SCHEDULE_DELAY). */
  readonly batchDelayMs: number;
}

const NO_SPAN: ActiveSpan = Object.freeze({
  setAttributes: () => {},
  addEvent: () => {},
  fail: () => {},
  carrier: () => undefined,
});

const NO_FIELDS: Readonly<Record<string, string>> = Object.freeze({});

/** Tracing off: every step runs as it is, and nothing is recorded. */
export function noTracing(): Tracing {
  return {
    enabled: false,
    inSpan: (_name, _options, step) => step(NO_SPAN),
    addEvent: () => {},
    annotate: () => {},
    logFields: () => NO_FIELDS,
    shutdown: async () => {},
  };
}

/** The W3C header of a request, as a carrier; undefined when it sent none. */
export function carrierFromHeaders(get: (name: string) => string | undefined): TraceCarrier | undefined {
  const traceparent = get('traceparent');
  if (traceparent === undefined || traceparent === '') return undefined;
  const tracestate = get('tracestate');
  return tracestate === undefined || tracestate === '' ? { traceparent } : { traceparent, tracestate };
}

/** The attributes every span about a job shares, after OpenTelemetry's messaging conventions. */
export function messagingAttributes(
  operation: 'send' | 'process' | 'settle',
  destination: string | undefined,
  jobId: string | undefined,
): Attributes {
  return {
    'messaging.system': 'bullmq',
    'messaging.operation.type': operation,
    'messaging.operation.name': operation,
    'messaging.destination.name': destination,
    'messaging.message.id': jobId,
  };
}
