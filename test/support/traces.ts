/**
 * Test side of tracing (issue 24): W3C `traceparent` values of the test's own making, an enqueue that
 * sends one and reads the one answered, and waits on the spans of one trace as a real OTLP receiver
 * (otlp-receiver.ts) decoded them.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Enqueued } from './jobs.js';
import type { OtlpReceiver, ReceivedSpan } from './otlp-receiver.js';
import type { Service } from './service.js';
import { waitFor } from './wait.js';

/** OTLP's span kinds, as the receiver decodes them. */
export const SPAN_KIND = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;
/** OTLP's status code of a failed span. */
export const STATUS_ERROR = 2;

export const newTraceId = (): string => randomBytes(16).toString('hex');
export const newSpanId = (): string => randomBytes(8).toString('hex');

export interface Traceparent {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
}

/** A `traceparent` header: version 00, sampled unless told otherwise. */
export function traceparentOf({ traceId, spanId, sampled }: Traceparent): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

/** A `traceparent` header read back; undefined when absent or not of version 00. */
export function parseTraceparent(header: string | null): Traceparent | undefined {
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(header ?? '');
  if (match === null) return undefined;
  const [, traceId = '', spanId = '', flags = '00'] = match;
  return { traceId, spanId, sampled: (Number.parseInt(flags, 16) & 1) === 1 };
}

export interface TracedEnqueue {
  readonly job: Enqueued;
  /** The `traceparent` header of the 202, as sent (null when none). */
  readonly answered: string | null;
}

/** POST /enqueue-task with `traceparent` when given; asserts the 202. */
export async function enqueueTraced(service: Service, task: unknown, traceparent?: string): Promise<TracedEnqueue> {
  const response = await service.request<Enqueued>('POST', '/enqueue-task', {
    body: JSON.stringify(task),
    headers: { 'content-type': 'application/json', ...(traceparent === undefined ? {} : { traceparent }) },
  });
  assert.equal(response.status, 202, response.text);
  return { job: response.body, answered: response.headers.get('traceparent') };
}

/** The spans of one trace received so far. */
export function spansOf(receiver: OtlpReceiver, traceId: string): ReceivedSpan[] {
  return receiver.spans.filter((span) => span.traceId === traceId);
}

/**
 * Waits until the trace holds a span of each name in `names` (as many as the name is listed), and
 * answers the trace's spans then.
 */
export function waitForTrace(
  receiver: OtlpReceiver,
  traceId: string,
  names: readonly string[],
  timeoutMs = 30_000,
): Promise<ReceivedSpan[]> {
  const wanted = new Map<string, number>();
  for (const name of names) wanted.set(name, (wanted.get(name) ?? 0) + 1);
  return waitFor(
    () => {
      const spans = spansOf(receiver, traceId);
      const complete = [...wanted].every(([name, count]) => spans.filter((span) => span.name === name).length >= count);
      return complete ? spans : undefined;
    },
    { timeoutMs, intervalMs: 50, what: `spans ${names.join(', ')} of trace ${traceId}` },
  );
}

/** The one span of `name` in `spans`; fails when there is none or more than one. */
export function only(spans: readonly ReceivedSpan[], name: string): ReceivedSpan {
  const found = spans.filter((span) => span.name === name);
  assert.equal(found.length, 1, `one span ${name}: ${JSON.stringify(spans.map((span) => span.name))}`);
  const [span] = found;
  assert.ok(span);
  return span;
}

/** The worker id of the process that sent a span. */
export const senderOf = (span: ReceivedSpan): unknown => span.resource['service.instance.id'];
