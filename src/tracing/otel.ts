/**
 * Tracing on: the OpenTelemetry SDK, set up from the parsed OTEL_* settings (tracing.ts), exporting
 * OTLP over HTTP (JSON) in batches. Only imported when tracing is on (see `startTracing`'s caller): a
 * service without tracing never loads this module or the SDK.
 *
 * Contexts travel as W3C Trace Context: in the request headers, on each job (a job option), and back
 * in the 202. The active span is kept with AsyncLocalStorage, so a log line written anywhere inside a
 * traced request or job carries its ids.
 */
import {
  context,
  propagation,
  SpanKind as OtelSpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Link,
  type Span,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  NodeTracerProvider,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
} from '@opentelemetry/sdk-trace-node';
import type { ActiveSpan, Attributes, SpanKind, TraceCarrier, Tracing, TracingConfig } from './tracing.js';

const KINDS: Readonly<Record<SpanKind, OtelSpanKind>> = {
  server: OtelSpanKind.SERVER,
  client: OtelSpanKind.CLIENT,
  producer: OtelSpanKind.PRODUCER,
  consumer: OtelSpanKind.CONSUMER,
  internal: OtelSpanKind.INTERNAL,
};

/** The instrumentation scope of every span: this service. */
const SCOPE = 'bullpen';

function samplerOf({ sampler, samplerRatio }: TracingConfig): Sampler {
  const ratio = new TraceIdRatioBasedSampler(samplerRatio);
  switch (sampler) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio;
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** Only defined values: the SDK drops undefined ones, but the types do not take them. */
function defined(attributes: Attributes | undefined): Record<string, string | number | boolean | string[]> {
  const out: Record<string, string | number | boolean | string[]> = {};
  for (const [key, value] of Object.entries(attributes ?? {})) {
    if (value !== undefined) out[key] = Array.isArray(value) ? [...(value as readonly string[])] : (value as string);
  }
  return out;
}

/**
 * Starts the SDK for one process. `resource` names it beyond the service (its worker id, its host);
 * the caller shuts it down on exit, which sends the spans not yet sent.
 */
export function startTracing(config: TracingConfig, resource: Readonly<Record<string, string>>): Tracing {
  const propagator = new W3CTraceContextPropagator();
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      ...config.resourceAttributes,
      'service.name': config.serviceName,
      ...resource,
    }),
    sampler: samplerOf(config),
    spanProcessors: [
      new BatchSpanProcessor(new OTLPTraceExporter({ url: config.url, headers: { ...config.headers } }), {
        scheduledDelayMillis: config.batchDelayMs,
      }),
    ],
  });
  provider.register({ contextManager: new AsyncLocalStorageContextManager(), propagator });
  const tracer = provider.getTracer(SCOPE);

  const contextOf = (carrier: TraceCarrier): Context =>
    propagation.extract(context.active(), carrier, {
      get: (from, key) => (from as unknown as Record<string, string | undefined>)[key],
      keys: (from) => Object.keys(from),
    });
  // An unsampled span is carried too: the job then keeps its trace's decision.
  const carrierOf = (span: Span): TraceCarrier | undefined => {
    const headers: Record<string, string> = {};
    propagation.inject(trace.setSpan(context.active(), span), headers);
    const { traceparent, tracestate } = headers;
    if (traceparent === undefined) return undefined;
    return tracestate === undefined ? { traceparent } : { traceparent, tracestate };
  };
  const linkTo = (carrier: TraceCarrier): Link | undefined => {
    const linked = trace.getSpanContext(contextOf(carrier));
    return linked === undefined ? undefined : { context: linked };
  };
  const handle = (span: Span): ActiveSpan => ({
    setAttributes: (attributes) => span.setAttributes(defined(attributes)),
    addEvent: (name, attributes) => span.addEvent(name, defined(attributes)),
    fail: (error) => {
      span.recordException(error instanceof Error ? error : new Error(String(error)));
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    },
    carrier: () => carrierOf(span),
  });

  return {
    enabled: true,
    inSpan(name, options, step) {
      const parent = options.parent === undefined ? context.active() : contextOf(options.parent);
      const links = (options.links ?? []).flatMap((carrier) => linkTo(carrier) ?? []);
      const span = tracer.startSpan(
        name,
        { kind: KINDS[options.kind ?? 'internal'], attributes: defined(options.attributes), links },
        parent,
      );
      return context.with(trace.setSpan(parent, span), async () => {
        try {
          return await step(handle(span));
        } catch (error) {
          handle(span).fail(error);
          throw error;
        } finally {
          span.end();
        }
      });
    },
    addEvent(name, attributes) {
      trace.getActiveSpan()?.addEvent(name, defined(attributes));
    },
    annotate(attributes) {
      trace.getActiveSpan()?.setAttributes(defined(attributes));
    },
    logFields(): Readonly<Record<string, string>> {
      const active = trace.getActiveSpan()?.spanContext();
      return active === undefined ? {} : { trace_id: active.traceId, span_id: active.spanId };
    },
    async shutdown() {
      await provider.shutdown();
    },
  };
}
