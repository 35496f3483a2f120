/**
 * The rules the ledger's Lua scripts share through includes, each against its TypeScript
 * specification, on a real Redis (one server or a cluster, test/support/test-redis.ts):
 * - the least-loaded choice (includes/least-loaded.lua, specified by `pickLeastLoaded`), as both
 *   scripts that make it do: reserve for new jobs, and move-begin for a job leaving a retired id, over
 *   random loads, capacities, liveness, cursors and worker ids;
 * - the job id format (includes/job-id.lua, specified by `jobIdFor` / `parseJobId`), as reserve
 *   writes it into the job index and as a move reads the first worker back out of it, over the edges
 *   of the id alphabet and ids that are no job ids;
 * - the clock (includes/server-time.lua): the time a test passes, or Redis's without one.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ledgerKeys } from '../../src/contracts/keys.js';
import { DELAYED_QUEUE, jobIdFor, newToken, parseJobId } from '../../src/contracts/names.js';
import { pickLeastLoaded, type Candidate } from '../../src/ledger/least-loaded.js';
import { createLedger, type Ledger, type ReserveOutcome } from '../../src/ledger/ledger.js';
import { createMoveLedger, type MoveLedger } from '../../src/ledger/moves.js';
import type { Clock } from '../../src/ledger/scripts.js';
import type { RedisClient } from '../../src/redis/connections.js';
import { testClock } from '../support/clock.js';
import { seededRandom } from '../support/random.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';

const TTL_MS = 5_000;
const ROUNDS = 150;
const SEED = 0x1ed6e5;
/** Every character a worker id may hold; tokens take the same but the dot. */
const WORKER_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-';
/** Worker ids at the edges of the alphabet and of the length limit. */
const EDGE_WORKERS = ['A', 'z', '0', '9', '_', '.', '-', 'a.B_c-9', 'w'.repeat(80)];
/** Tokens at the edges of their alphabet and length limit, and the two kinds the service makes. */
const EDGE_TOKENS = ['T', '_', '-', 'a-B_9', 't'.repeat(64), newToken(), randomUUID()];

interface WorkerState extends Candidate {
  /** false: a heartbeat just older than the ttl. */
  readonly alive: boolean;
}

interface Ledgers {
  readonly prefix: string;
  readonly ledger: Ledger;
  readonly moves: MoveLedger;
}

function ledgersOf(redis: RedisClient, clock: Clock): Ledgers {
  const prefix = `g${randomUUID().slice(0, 8)}`;
  return {
    prefix,
    ledger: createLedger({ redis, prefix, workerTtlMs: TTL_MS, clock }),
    moves: createMoveLedger({
      redis,
      prefix,
      workerId: 'mover',
      owner: 'mover/1',
      workerTtlMs: TTL_MS,
      locationTtlMs: 3_600_000,
      clock,
    }),
  };
}

/**
 * Writes the state the scripts read (heartbeats, capacities, counters and the cursor) directly:
 * any loads and cursor at once, rather than through thousands of reservations.
 */
async function writeState(
  redis: RedisClient,
  prefix: string,
  workers: readonly WorkerState[],
  now: number,
  cursor: number,
): Promise<void> {
  const keys = ledgerKeys(prefix);
  const multi = redis.multi();
  for (const { id, alive, concurrency, queued, active } of workers) {
    multi.zadd(keys.heartbeats, alive ? now - TTL_MS : now - TTL_MS - 1, id);
    multi.hset(keys.capacity, id, concurrency);
    multi.hset(keys.queued, id, queued);
    multi.hset(keys.active, id, active);
  }
  multi.set(keys.cursor, cursor);
  for (const [error] of (await multi.exec()) ?? []) if (error) throw error;
}

async function setCursor(redis: RedisClient, prefix: string, cursor: number): Promise<void> {
  await redis.set(ledgerKeys(prefix).cursor, cursor);
}

/** Random workers: half the time many ties (capacities of powers of two, loads of whole multiples). */
function randomWorkers(random: () => number): WorkerState[] {
  const int = (max: number) => Math.floor(random() * (max + 1));
  const ids = new Set<string>();
  const count = 1 + int(6);
  while (ids.size < count) {
    ids.add(Array.from({ length: 1 + int(11) }, () => WORKER_ALPHABET[int(WORKER_ALPHABET.length - 1)]).join(''));
  }
  const tied = random() < 0.5;
  return [...ids].map((id) => {
    const concurrency = tied ? 2 ** int(3) : 1 + int(31);
    const load = tied ? concurrency * int(2) : int(60);
    const queued = int(load);
    return { id, concurrency, queued, active: load - queued, alive: random() < 0.8 };
  });
}

/** A cursor from everywhere its range: small, large, and below zero. */
function randomCursor(random: () => number): number {
  const kind = Math.floor(random() * 3);
  const magnitude = Math.floor(random() * (kind === 1 ? 2 ** 40 : 1_000));
  return kind === 2 ? -magnitude : magnitude;
}

/** What `k` reserves from `cursor` choose by the TypeScript rule, each adding to its choice's load. */
function specifiedReserves(workers: readonly WorkerState[], cursor: number, k: number): (string | undefined)[] {
  const live = new Map(workers.filter((worker) => worker.alive).map((worker) => [worker.id, worker]));
  return Array.from({ length: k }, (_, j) => {
    const pick = pickLeastLoaded([...live.values()], cursor + j + 1);
    if (pick !== undefined) live.set(pick.id, { ...pick, alive: true, queued: pick.queued + 1 });
    return pick?.id;
  });
}

const chosen = (outcome: ReserveOutcome): string | undefined =>
  outcome.kind === 'reserved' ? outcome.workerId : undefined;

describe('the ledger scripts follow their TypeScript specifications', () => {
  let redis: ModeRedis;
  let connection: RedisClient;
  before(async () => {
    redis = await startTestRedis();
    connection = redis.connect();
  });
  after(async () => {
    connection.disconnect();
    await redis.stop();
  });

  test('reserve and move-begin choose as pickLeastLoaded, with the cursor each advances', async () => {
    const random = seededRandom(SEED);
    const clock = testClock();
    for (let round = 0; round < ROUNDS; round += 1) {
      const { prefix, ledger, moves } = ledgersOf(connection, clock.now);
      const workers = randomWorkers(random);
      const beginCursor = randomCursor(random);
      await writeState(connection, prefix, workers, clock.now(), beginCursor);
      const context = () => `seed ${SEED}, round ${round}: ${JSON.stringify(workers)}`;

      // A job leaving a retired id (no target): among the live workers but its source. Each begin
      // advances the cursor by one (INCR); the source may be live, dead or unknown.
      const sources = [...workers.map((worker) => worker.id), 'gone'];
      for (let i = 0; i < 3; i += 1) {
        const source = sources[Math.floor(random() * sources.length)] ?? 'gone';
        const others = workers.filter((worker) => worker.alive && worker.id !== source);
        const expected = pickLeastLoaded(others, beginCursor + i + 1)?.id;
        const outcome = await moves.begin({
          jobId: jobIdFor(source, `b${i}`),
          token: `b${i}`,
          intentId: randomUUID(),
          source,
          target: undefined,
          reason: 'retired',
        });
        assert.equal(
          outcome.begun ? outcome.target : undefined,
          expected,
          `begin ${i} from ${source}, cursor ${beginCursor}, ${context()}`,
        );
      }

      // New jobs: a batch advances the cursor by its size (INCRBY), the j-th job taking the j-th step.
      const reserveCursor = randomCursor(random);
      await setCursor(connection, prefix, reserveCursor);
      const k = 1 + Math.floor(random() * 5);
      const tokens = Array.from({ length: k }, (_, j) => `r${j}`);
      assert.deepEqual(
        (await ledger.reserveMany(tokens)).map(chosen),
        specifiedReserves(workers, reserveCursor, k),
        `a batch of ${k} from cursor ${reserveCursor}, ${context()}`,
      );
    }
  });

  test('reserve writes each job index entry as jobIdFor(worker, token) makes it, plain or delayed', async () => {
    const clock = testClock();
    const { prefix, ledger } = ledgersOf(connection, clock.now);
    const index = ledgerKeys(prefix).index;
    const idle = EDGE_WORKERS.map((id) => ({ id, concurrency: 1, queued: 0, active: 0, alive: true }));
    await writeState(connection, prefix, idle, clock.now(), 0);

    // Twice as many jobs as workers: idle workers of equal capacity take two each.
    const tokens = [...EDGE_TOKENS];
    while (tokens.length < 2 * EDGE_WORKERS.length) tokens.push(newToken());
    const placed = (await ledger.reserveMany(tokens)).map(chosen);
    assert.deepEqual(new Set(placed), new Set(EDGE_WORKERS), 'every edge worker id got a job');
    const expected = tokens.map((token, j) => jobIdFor(placed[j] ?? '', token));
    assert.deepEqual((await connection.zrange(index, 0, -1)).sort(), [...expected].sort());
    for (const [j, jobId] of expected.entries()) {
      assert.deepEqual(parseJobId(jobId), { workerId: placed[j], token: tokens[j] }, jobId);
    }
  });

  test('a delayed job keeps the id made for the queue it waited in, whichever worker takes it', async () => {
    const clock = testClock();
    for (const first of [DELAYED_QUEUE, ...EDGE_WORKERS]) {
      const { prefix, ledger } = ledgersOf(connection, clock.now);
      const index = ledgerKeys(prefix).index;
      const workers = ['w-0', 'w-1'].map((id) => ({ id, concurrency: 1, queued: 0, active: 0, alive: true }));
      await writeState(connection, prefix, workers, clock.now(), 0);
      for (const token of EDGE_TOKENS) {
        const worker = chosen(await ledger.reserve(token, first));
        assert.ok(worker !== undefined);
        const jobId = jobIdFor(first, token);
        assert.notEqual(await connection.zscore(index, jobId), null, `${jobId} is in the index`);
        assert.equal(await connection.zscore(index, jobIdFor(worker, token)), null, 'not under the worker taking it');
        assert.deepEqual(parseJobId(jobId), { workerId: first, token });
      }
      assert.equal(await connection.zcard(index), EDGE_TOKENS.length);
    }
  });

  test('a move reads the worker a job id was made for as parseJobId does, else names its source', async () => {
    const clock = testClock();
    const { prefix, ledger, moves } = ledgersOf(connection, clock.now);
    const workers = ['src', 'dst'].map((id) => ({ id, concurrency: 1, queued: 0, active: 0, alive: true }));
    await writeState(connection, prefix, workers, clock.now(), 0);
    const jobIds = [
      ...EDGE_WORKERS.flatMap((worker) => EDGE_TOKENS.map((token) => jobIdFor(worker, token))),
      jobIdFor(DELAYED_QUEUE, newToken()),
      jobIdFor('src', newToken()),
      // No job ids: each breaks one rule of the format.
      '',
      '~',
      'no-tilde',
      '~abc',
      'host-1~',
      'a~b~c',
      'host:a-1~abc',
      'host-a-1~ab:c',
      'host/a-1~abc',
      'host a-1~abc',
      'host-a-1~abc\n',
      'host-a-1~a.b',
      'hôst-1~abc',
      `${'w'.repeat(81)}~abc`,
      `host-1~${'t'.repeat(65)}`,
    ];
    const expected = new Map<string, string>();
    for (const [i, jobId] of jobIds.entries()) {
      const token = `m${i}`;
      const intentId = randomUUID();
      const begun = await moves.begin({ jobId, token, intentId, source: 'src', target: 'dst', reason: 'stolen' });
      assert.deepEqual(begun, { begun: true, target: 'dst' });
      assert.equal(await moves.shift(token, intentId), true);
      assert.equal(await moves.end(token, intentId, 'commit'), 1);
      expected.set(token, jobIdFor(parseJobId(jobId)?.workerId ?? 'src', token));
    }
    // The target finds each job under the id its entry names: the original worker's, or the source's.
    const found = new Map<string, string>();
    for await (const reservation of ledger.reservations('dst')) found.set(reservation.token, reservation.jobId);
    assert.deepEqual(found, expected);
  });

  test('the scripts stamp and judge by the clock they are given, and by Redis TIME without one', async () => {
    const clock = testClock(1_000_000_000_000);
    const { prefix, ledger } = ledgersOf(connection, clock.now);
    const keys = ledgerKeys(prefix);
    // A heartbeat exactly the ttl old: still alive, for one more millisecond.
    await writeState(
      connection,
      prefix,
      [{ id: 'w', concurrency: 1, queued: 0, active: 0, alive: true }],
      clock.now(),
      0,
    );
    assert.deepEqual(await ledger.reserve('t1'), { kind: 'reserved', workerId: 'w', reservedAt: clock.now(), load: 0 });
    assert.equal(Number(await connection.zscore(keys.index, jobIdFor('w', 't1'))), clock.now());
    assert.equal(await ledger.markStarted('w', 'unreserved'), true);
    const stamps = new Map<string, number>();
    for await (const reservation of ledger.reservations('w')) stamps.set(reservation.token, reservation.reservedAt);
    assert.deepEqual(Object.fromEntries(stamps), { t1: clock.now(), unreserved: clock.now() });
    assert.equal(await ledger.now(), clock.now());
    clock.advance(1);
    assert.deepEqual(await ledger.reserve('t2'), { kind: 'no-live-worker' }, 'the heartbeat is one ms too old');

    const real = createLedger({ redis: connection, prefix, workerTtlMs: TTL_MS });
    const before = await real.now();
    await connection.zadd(keys.heartbeats, before, 'w');
    const outcome = await real.reserve('t3');
    const after = await real.now();
    assert.equal(outcome.kind, 'reserved');
    assert.ok(
      outcome.kind === 'reserved' && outcome.reservedAt >= before && outcome.reservedAt <= after,
      `reserved at ${JSON.stringify(outcome)}, Redis said ${before} then ${after}`,
    );
  });
});
