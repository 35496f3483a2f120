/**
 * Tracing (issue 24) of the real service: every process exports its spans as OTLP/HTTP JSON to a
 * real receiver in this test (test/support/otlp-receiver.ts), which decodes what arrives, with the
 * resource of the process that sent it (`service.instance.id` is its worker id). Nothing of the SDK is
 * mocked. One enqueue carrying the test's own `traceparent` yields spans of that trace from the process
 * that answered the request (SERVER, then PRODUCER) and from the process that ran the job (CONSUMER per
 * attempt, then the body's run), also after a retry and after a steal moved the job to another
 * process; the job's log lines carry the trace's ids. Spans leave in batches (OTEL_BSP_SCHEDULE_DELAY),
 * so the test polls the receiver.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { queueNameFor } from '../../src/contracts/names.js';
import { createGate, FIXTURE_HANDLERS, GATE_JOB, holdSlots, type Gate } from '../support/gate.js';
import { waitForIdle, waitForJobs, type Enqueued } from '../support/jobs.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.js';
import { serviceSuite } from '../support/service-suite.js';
import { startTestRedis } from '../support/test-redis.js';
import {
  enqueueTraced,
  newSpanId,
  newTraceId,
  only,
  parseTraceparent,
  senderOf,
  SPAN_KIND,
  spansOf,
  STATUS_ERROR,
  traceparentOf,
  waitForTrace,
  type Traceparent,
} from '../support/traces.js';
import { waitFor } from '../support/wait.js';

/** Run by the dummy body, for as long as it says. */
const QUICK = { jobName: 'traced', data: { durationMs: 20 } };
const ENQUEUE_SPAN = 'POST /enqueue-task';
const SEND_SPAN = 'send tasks';
const MOVE_SPAN = 'move';
const processSpan = (workerId: string) => `process ${queueNameFor(workerId)}`;
const runSpan = (jobName: string) => `run ${jobName}`;

const sampledCaller = (): Traceparent => ({ traceId: newTraceId(), spanId: newSpanId(), sampled: true });

/** The consumer spans of a trace (one per attempt), in attempt order. */
function attemptsOf(spans: readonly ReceivedSpan[]): ReceivedSpan[] {
  return spans
    .filter((span) => span.kind === SPAN_KIND.consumer)
    .sort((a, b) => Number(a.attributes['bullpen.attempt']) - Number(b.attributes['bullpen.attempt']));
}

/**
 * The spans of a request's enqueue, asserted: the SERVER span continuing the caller's span, the
 * PRODUCER span under it naming the worker of the 202, both from one process. Answers the send span.
 */
function assertEnqueueSpans(spans: readonly ReceivedSpan[], caller: Traceparent, job: Enqueued): ReceivedSpan {
  const server = only(spans, ENQUEUE_SPAN);
  assert.equal(server.kind, SPAN_KIND.server);
  assert.equal(server.parentSpanId, caller.spanId, 'the request span continues the caller span');
  assert.equal(server.attributes['http.response.status_code'], 202);
  const send = only(spans, SEND_SPAN);
  assert.equal(send.kind, SPAN_KIND.producer);
  assert.equal(send.parentSpanId, server.spanId, 'the send span is a child of the request span');
  assert.equal(send.attributes['bullpen.worker'], job.assignedWorker, 'the send span names the worker of the 202');
  assert.equal(typeof send.attributes['bullpen.worker.load'], 'number');
  assert.equal(send.attributes['bullpen.placement'], 'reserved');
  assert.equal(send.attributes['messaging.system'], 'bullmq');
  assert.equal(send.attributes['messaging.destination.name'], queueNameFor(job.assignedWorker));
  assert.equal(send.attributes['messaging.message.id'], job.jobId);
  assert.equal(senderOf(send), senderOf(server), 'one process answered and sent');
  assert.equal(server.resource['service.name'], 'bullpen');
  return send;
}

describe('tracing to a real OTLP receiver', () => {
  let receiver: OtlpReceiver | undefined;
  const started = (): OtlpReceiver => {
    assert.ok(receiver, 'the receiver was started');
    return receiver;
  };
  const spansIn = (traceId: string) => spansOf(started(), traceId);
  const arrived = (traceId: string, names: readonly string[]) => waitForTrace(started(), traceId, names);
  before(async () => {
    receiver = await startOtlpReceiver();
  });
  const suite = serviceSuite(startTestRedis, (redis) => ({
    ...redis.serviceOptions,
    workers: 2,
    env: {
      // As in the stealing test: one slot per worker and three jobs waiting beyond it, so that a job
      // waits behind a long one and the idle worker steals it.
      WORKER_CONCURRENCY: '1',
      PREFETCH: '3',
      HANDLERS_DIR: FIXTURE_HANDLERS,
      LOG_LEVEL: 'debug',
      OTEL_EXPORTER_OTLP_ENDPOINT: started().url,
      OTEL_BSP_SCHEDULE_DELAY: '200',
    },
  }));
  after(async () => {
    await receiver?.stop();
  });

  test('an enqueue with a traceparent: spans of its trace from the process that answered and the one that ran it', async () => {
    const { service } = suite;
    // Requests are spread over the processes by the primary, and jobs over the workers by load: some
    // enqueue is answered by one process and run by another within a few.
    const rounds: { answeredBy: unknown; ranBy: string }[] = [];
    while (!rounds.some(({ answeredBy, ranBy }) => answeredBy !== ranBy)) {
      assert.ok(rounds.length < 10, `every enqueue ran where it was answered: ${JSON.stringify(rounds)}`);
      const caller = sampledCaller();
      const { job, answered } = await enqueueTraced(service, QUICK, traceparentOf(caller));
      const answer = parseTraceparent(answered);
      assert.ok(answer, `a traceparent answered: ${answered}`);
      assert.equal(answer.traceId, caller.traceId, 'the 202 names the caller trace');
      assert.equal(answer.sampled, true);
      const [view] = await waitForJobs(service, [job]);
      assert.ok(view);
      const worker = view.assignedWorker;
      const spans = await arrived(caller.traceId, [
        ENQUEUE_SPAN,
        SEND_SPAN,
        processSpan(worker),
        runSpan(QUICK.jobName),
      ]);

      const send = assertEnqueueSpans(spans, caller, job);
      assert.equal(answer.spanId, only(spans, ENQUEUE_SPAN).spanId, 'the 202 names the request span');
      const attempt = only(spans, processSpan(worker));
      assert.equal(attempt.kind, SPAN_KIND.consumer);
      assert.equal(attempt.parentSpanId, send.spanId, 'the attempt is a child of the send span');
      assert.equal(senderOf(attempt), worker, 'the attempt span comes from the process that ran the job');
      assert.equal(attempt.attributes['bullpen.worker'], worker);
      assert.equal(attempt.attributes['bullpen.attempt'], 1);
      assert.equal(attempt.attributes['messaging.message.id'], job.jobId);
      const run = only(spans, runSpan(QUICK.jobName));
      assert.equal(run.kind, SPAN_KIND.internal);
      assert.equal(run.parentSpanId, attempt.spanId);
      assert.equal(senderOf(run), worker);
      assert.equal(typeof run.attributes['thread.id'], 'number');
      assert.equal(run.attributes['bullpen.outcome'], 'completed');
      assert.ok(spans.every((span) => span.statusCode !== STATUS_ERROR));
      rounds.push({ answeredBy: senderOf(send), ranBy: worker });
    }
    await waitForIdle(service);
  });

  test('the log lines of a traced job carry its trace and span ids', async () => {
    const { service } = suite;
    const caller = sampledCaller();
    const { job } = await enqueueTraced(service, QUICK, traceparentOf(caller));
    const [view] = await waitForJobs(service, [job]);
    assert.ok(view);
    const spans = await arrived(caller.traceId, [ENQUEUE_SPAN, SEND_SPAN, processSpan(view.assignedWorker)]);
    const lineOf = (event: string) =>
      waitFor(() => service.logs.find((line) => line.event === event && line.jobId === job.jobId), {
        what: `the ${event} line of ${job.jobId}`,
      });
    const started = await lineOf('job.started');
    assert.equal(started.trace_id, caller.traceId);
    assert.equal(started.span_id, only(spans, processSpan(view.assignedWorker)).spanId, 'in the attempt span');
    assert.equal(started.workerId, view.assignedWorker);
    const enqueued = await lineOf('task.enqueued');
    assert.equal(enqueued.trace_id, caller.traceId);
    assert.ok(
      spans.some((span) => span.spanId === enqueued.span_id && senderOf(span) === enqueued.workerId),
      'task.enqueued names a span of the trace, from its own process',
    );
    await waitForIdle(service);
  });

  test('an enqueue without a traceparent starts a trace, which the 202 names', async () => {
    const { service } = suite;
    const { job, answered } = await enqueueTraced(service, QUICK);
    const answer = parseTraceparent(answered);
    assert.ok(answer, `a traceparent answered: ${answered}`);
    const [view] = await waitForJobs(service, [job]);
    assert.ok(view);
    const spans = await arrived(answer.traceId, [ENQUEUE_SPAN, SEND_SPAN, processSpan(view.assignedWorker)]);
    const server = only(spans, ENQUEUE_SPAN);
    assert.equal(server.parentSpanId, '', 'the request span is the root of a new trace');
    assert.equal(server.spanId, answer.spanId);
    assert.equal(only(spans, processSpan(view.assignedWorker)).parentSpanId, only(spans, SEND_SPAN).spanId);
    await waitForIdle(service);
  });

  test('after a retry: one attempt span per attempt in the trace, the first failed', async () => {
    const { service } = suite;
    const caller = sampledCaller();
    const task = { jobName: 'flaky', data: {}, options: { attempts: 2, backoffMs: 100 } };
    const { job } = await enqueueTraced(service, task, traceparentOf(caller));
    const [view] = await waitForJobs(service, [job]);
    assert.ok(view);
    assert.equal(view.attemptsStarted, 2);
    const worker = view.assignedWorker;
    const spans = await arrived(caller.traceId, [
      ENQUEUE_SPAN,
      SEND_SPAN,
      processSpan(worker),
      processSpan(worker),
      runSpan('flaky'),
      runSpan('flaky'),
    ]);
    const send = assertEnqueueSpans(spans, caller, job);
    const attempts = attemptsOf(spans);
    assert.deepEqual(
      attempts.map((span) => span.attributes['bullpen.attempt']),
      [1, 2],
    );
    for (const attempt of attempts) {
      assert.equal(attempt.parentSpanId, send.spanId, 'each attempt is a child of the send span');
      assert.equal(senderOf(attempt), worker);
    }
    const [first, second] = attempts;
    assert.ok(first && second);
    assert.equal(first.statusCode, STATUS_ERROR, 'the first attempt failed');
    assert.notEqual(second.statusCode, STATUS_ERROR, 'the second did not');
    const runUnder = (attempt: ReceivedSpan) =>
      spans.find((span) => span.name === runSpan('flaky') && span.parentSpanId === attempt.spanId);
    assert.equal(runUnder(first)?.attributes['bullpen.outcome'], 'failed');
    assert.equal(runUnder(second)?.attributes['bullpen.outcome'], 'completed');
    // Each attempt's log line is written in its own span.
    const startedLines = await waitFor(() => {
      const lines = service.logs.filter((line) => line.event === 'job.started' && line.jobId === job.jobId);
      return lines.length === 2 ? lines : undefined;
    });
    assert.deepEqual(
      startedLines.map((line) => [line.attempt, line.trace_id, line.span_id]),
      [
        [1, caller.traceId, first.spanId],
        [2, caller.traceId, second.spanId],
      ],
    );
    await waitForIdle(service);
  });

  test('after a steal: the job runs in the thief process, in the caller trace, with a move span', async () => {
    const { redis } = suite;
    // As in stealing.test.ts: a long job holds one worker's slot; short ones, held until all are
    // placed, fill both workers; once they may end, the idle worker steals those behind the long one.
    const longGate = createGate(redis.client, redis.nodeUrl);
    const shortGate = createGate(redis.client, redis.nodeUrl);
    // Opened whatever happens, so that a failure here leaves no job holding a slot for the next test.
    try {
      await stealAndCheck(longGate, shortGate);
    } finally {
      await shortGate.open();
      await longGate.open();
    }
    await waitForIdle(suite.service);
  });

  async function stealAndCheck(longGate: Gate, shortGate: Gate): Promise<void> {
    const { service } = suite;
    const [long] = await holdSlots(service, longGate, 1);
    assert.ok(long);
    const shorts: (Enqueued & { caller: Traceparent })[] = [];
    for (let i = 0; i < 7; i += 1) {
      const caller = sampledCaller();
      const { job } = await enqueueTraced(
        service,
        { jobName: GATE_JOB, data: shortGate.data() },
        traceparentOf(caller),
      );
      shorts.push({ ...job, caller });
    }
    const behindLong = shorts.filter((job) => job.assignedWorker === long.assignedWorker);
    assert.equal(behindLong.length, 3, 'least-loaded routing placed jobs behind the long one');
    await shortGate.open();
    const views = await waitForJobs(service, shorts);
    const stolen = views.filter((view) => view.movedFrom.length > 0);
    assert.deepEqual(
      stolen.map((view) => view.jobId).sort(),
      behindLong.map((job) => job.jobId).sort(),
      'the jobs behind the long one were stolen',
    );
    for (const view of stolen) {
      const short = shorts.find((candidate) => candidate.jobId === view.jobId);
      assert.ok(short);
      const thief = view.assignedWorker;
      assert.deepEqual(view.movedFrom, [long.assignedWorker]);
      assert.notEqual(thief, long.assignedWorker);
      const spans = await arrived(short.caller.traceId, [ENQUEUE_SPAN, SEND_SPAN, MOVE_SPAN, processSpan(thief)]);
      const send = assertEnqueueSpans(spans, short.caller, short);
      assert.equal(send.attributes['bullpen.worker'], long.assignedWorker, 'sent to the worker it was stolen from');
      const attempt = only(spans, processSpan(thief));
      assert.equal(senderOf(attempt), thief, 'the attempt span comes from the thief');
      assert.equal(attempt.parentSpanId, send.spanId, 'and continues the trace of the enqueue');
      assert.deepEqual(attemptsOf(spans).map(senderOf), [thief], 'no attempt ran where it was first sent');
      const move = only(spans, MOVE_SPAN);
      assert.equal(move.attributes['bullpen.move.reason'], 'stolen');
      assert.equal(move.attributes['bullpen.moved_from'], long.assignedWorker);
      assert.equal(move.attributes['bullpen.worker'], thief);
      assert.equal(move.attributes['bullpen.move.outcome'], 'moved');
      assert.equal(move.attributes['messaging.message.id'], view.jobId);
      assert.equal(senderOf(move), thief, 'the thief moved it');
      assert.equal(move.parentSpanId, send.spanId, 'the move is in the trace of the enqueue');
    }
    await longGate.open();
    await waitForJobs(service, [long]);
  }

  test('a traceparent not sampled: the job runs, and no span of its trace is sent', async () => {
    const { service } = suite;
    const caller: Traceparent = { traceId: newTraceId(), spanId: newSpanId(), sampled: false };
    const { job, answered } = await enqueueTraced(service, QUICK, traceparentOf(caller));
    const answer = parseTraceparent(answered);
    assert.ok(answer, `a traceparent answered: ${answered}`);
    assert.equal(answer.traceId, caller.traceId, 'the 202 names the caller trace');
    assert.equal(answer.sampled, false, 'and keeps its decision');
    await waitForJobs(service, [job]);
    // A span of that trace, had it been recorded, would have ended before the job completed, so it
    // leaves its process no later than the spans of a sampled job run there afterwards: once each
    // worker's process has sent such spans, nothing of that trace is still on its way.
    const workers = new Set((await service.workers()).workers.map((worker) => worker.id));
    for (let round = 0; workers.size > 0; round += 1) {
      assert.ok(round < 10, `no sampled job ran on ${[...workers].join(', ')}`);
      const later = sampledCaller();
      const { job: marker } = await enqueueTraced(service, QUICK, traceparentOf(later));
      const [view] = await waitForJobs(service, [marker]);
      assert.ok(view);
      await arrived(later.traceId, [ENQUEUE_SPAN, processSpan(view.assignedWorker)]);
      workers.delete(view.assignedWorker);
    }
    assert.deepEqual(spansIn(caller.traceId), []);
    await waitForIdle(service);
  });
});
