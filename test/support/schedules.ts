/**
 * Schedules as the tests drive them (issue 23): the API's calls, and the jobs a schedule made, read
 * from `GET /jobs?schedule=` page by page, so that a test counts jobs per tick.
 */
import assert from 'node:assert/strict';
import type { ScheduleAnswer } from '../../src/http/routes/schedules.js';
import type { ScheduleDefinition } from '../../src/schedules/definition.js';
import type { Service } from './service.js';

export interface ScheduledJob {
  readonly jobId: string;
  readonly state: string;
  readonly assignedWorker: string | null;
  readonly schedule: { readonly name: string; readonly tickAt: string } | null;
  readonly expiresAt: string | null;
  readonly timestamps: { readonly startedAt: string | null; readonly finishedAt: string | null };
}

export async function putSchedule(
  service: Service,
  name: string,
  body: unknown,
): Promise<{ status: number; body: ScheduleAnswer }> {
  const answer = await service.request<ScheduleAnswer>('PUT', `/schedules/${name}`, {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.ok(answer.status === 200 || answer.status === 201, answer.text);
  return { status: answer.status, body: answer.body };
}

export async function readSchedule(service: Service, name: string): Promise<ScheduleAnswer> {
  const answer = await service.request<ScheduleAnswer>('GET', `/schedules/${name}`);
  assert.equal(answer.status, 200, answer.text);
  return answer.body;
}

/** Every job the schedule made, oldest tick first. */
export async function jobsOf(service: Service, name: string): Promise<ScheduledJob[]> {
  const jobs: ScheduledJob[] = [];
  let cursor: string | null = null;
  do {
    const query: string = `/jobs?schedule=${name}&limit=500${cursor === null ? '' : `&cursor=${cursor}`}`;
    const page = await service.request<{ jobs: ScheduledJob[]; nextCursor: string | null }>('GET', query);
    assert.equal(page.status, 200, page.text);
    jobs.push(...page.body.jobs);
    cursor = page.body.nextCursor;
  } while (cursor !== null);
  return jobs.sort((a, b) => tickOf(a) - tickOf(b));
}

export function tickOf(job: ScheduledJob): number {
  assert.ok(job.schedule, `job ${job.jobId} names no schedule`);
  return Date.parse(job.schedule.tickAt);
}

/** The ticks the jobs were made for, each once: a tick made twice fails here, naming it. */
export function distinctTicks(jobs: readonly ScheduledJob[]): number[] {
  const ticks = jobs.map(tickOf);
  const twice = ticks.filter((tick, i) => ticks.indexOf(tick) !== i);
  assert.deepEqual(
    twice.map((tick) => new Date(tick).toISOString()),
    [],
    'no tick made two jobs',
  );
  return ticks;
}

/** A schedule definition as stored, ticking every second from `anchor`, with whatever a test changes. */
export function testDefinition(anchor: number, overrides: Partial<ScheduleDefinition> = {}): ScheduleDefinition {
  return {
    rule: { everyMs: 1_000 },
    task: { jobName: 'tick', data: {} },
    startAt: null,
    endAt: null,
    limit: null,
    missedTicks: 'runOnce',
    overlap: 'allow',
    anchor,
    createdAt: anchor - 1_000,
    updatedAt: anchor - 1_000,
    ...overrides,
  };
}
