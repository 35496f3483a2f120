/**
 * `GET /jobs/:id/events`: a job's life as Server-Sent Events, from any process. The stream sends
 * `state` when the job's state changes, `progress` when its saved progress changes, and a final
 * `completed`, `failed`, `cancelled` or `expired` carrying the job's JSON, then closes; each names the job's
 * `group`. A job that has already ended gets its final event at once. A comment line every
 * HEARTBEAT_MS keeps idle proxies from closing it.
 * The server may end a stream first (see ../event-streams.ts): with `shutdown` when the process stops,
 * with `reconnect` once it has been open SSE_MAX_LIFETIME_MS; the client then opens it again.
 *
 * It reads the job from Redis every POLL_MS rather than subscribing to BullMQ's event streams: any
 * process can serve it without a blocking connection per queue, a job that moves between workers
 * stays in view, and progress is saved at most once per PROGRESS_INTERVAL_MS anyway.
 */
import { Router, type Response } from 'express';
import { fromStore, NotFoundError } from '../../errors.js';
import type { Logger } from '../../logging/logger.js';
import type { JobReader, JobView } from '../../jobs/reader.js';
import { echo } from '../errors.js';
import type { EventStreams } from '../event-streams.js';

const POLL_MS = 250;
const HEARTBEAT_MS = 15_000;
const FINAL_STATES = new Set(['completed', 'failed', 'cancelled', 'expired']);
const STREAM_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
};

function send(res: Response, event: string, data: unknown): void {
  // The server may have ended the stream while a read of the job was on its way.
  if (res.writableEnded) return;
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

export function jobEventsRouter({
  jobs,
  streams,
  logger,
}: {
  jobs: JobReader;
  streams: EventStreams;
  logger: Logger;
}): Router {
  const router = Router();
  router.get('/jobs/:id/events', async (req, res) => {
    const id = req.params.id;
    const first = await fromStore(() => jobs.read(id));
    if (!first) throw new NotFoundError(`No job with id ${echo(id)}`);
    if (req.method === 'HEAD') {
      res.status(200).set(STREAM_HEADERS).end();
      return;
    }
    const place = streams.take();
    res.status(200).set(STREAM_HEADERS);
    res.flushHeaders();

    let last: JobView | undefined;
    let closed = false;
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), HEARTBEAT_MS);
    const finish = () => {
      closed = true;
      clearInterval(heartbeat);
      place.release();
      res.end();
    };
    req.on('close', () => {
      closed = true;
      clearInterval(heartbeat);
      place.release();
    });
    // The server ends it first: the process stops, or the stream has lived its time.
    place.onEnd((why) => {
      send(res, why, { jobId: id });
      finish();
    });
    if (closed) return;
    /** Sends what changed since the last view; true once the job has ended. */
    const emit = (view: JobView): boolean => {
      const { jobId, group } = view;
      if (view.state !== last?.state) send(res, 'state', { jobId, group, state: view.state });
      if (view.progress !== null && JSON.stringify(view.progress) !== JSON.stringify(last?.progress ?? null)) {
        send(res, 'progress', { jobId, group, progress: view.progress });
      }
      last = view;
      if (!FINAL_STATES.has(view.state)) return false;
      send(res, view.state, view);
      return true;
    };

    if (emit(first)) {
      finish();
      return;
    }
    while (!closed) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      if (closed) break;
      let view: JobView | undefined;
      try {
        view = await jobs.read(id);
      } catch (error) {
        // Redis is away for a moment: the stream waits for it, as the job itself does.
        logger.debug({ err: error, jobId: id }, 'job events: read failed; trying again');
        continue;
      }
      if (closed) break;
      if (view === undefined) {
        // Removed by retention between two reads: nothing more will happen to it.
        send(res, 'removed', { jobId: id });
        finish();
        return;
      }
      if (emit(view)) {
        finish();
        return;
      }
    }
  });
  return router;
}
