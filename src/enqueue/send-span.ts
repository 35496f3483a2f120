/**
 * The enqueue's span (issue 24): each dispatch runs in a PRODUCER span named after OpenTelemetry's
 * messaging conventions, child of the request's span (or of the caller's `traceparent`), and each job
 * stores that span's context, so that its attempts continue the trace wherever they run. With tracing
 * off the dispatcher is used as it is: no span, and nothing more stored on a job.
 */
import type { DispatchRequest } from '../contracts/dispatch.js';
import { messagingAttributes, type Tracing } from '../tracing/tracing.js';
import type { Dispatcher } from './dispatcher.js';

/** The span's name: the operation and the queues' template (one name for every worker's queue). */
const SEND_SPAN = 'send tasks';

export function tracedDispatcher(dispatcher: Dispatcher, tracing: Tracing): Dispatcher {
  if (!tracing.enabled) return dispatcher;
  const sending = <T>(count: number, send: (trace: DispatchRequest['trace']) => Promise<T>) =>
    tracing.inSpan(
      SEND_SPAN,
      {
        kind: 'producer',
        attributes: {
          ...messagingAttributes('send', undefined, undefined),
          'messaging.batch.message_count': count > 1 ? count : undefined,
        },
      },
      (span) => send(span.carrier()),
    );
  return {
    dispatch: (request, record, planned) =>
      sending(1, (trace) => dispatcher.dispatch({ ...request, trace }, record, planned)),
    dispatchMany: (requests, record, planned) =>
      sending(requests.length, (trace) =>
        dispatcher.dispatchMany(
          requests.map((request) => ({ ...request, trace })),
          record,
          planned,
        ),
      ),
  };
}
