/**
 * Idempotency keys: a client that sends `Idempotency-Key` with a task may send it again, after a
 * lost answer or a crash, and get the first answer back instead of a second job.
 *
 * A key's record lives in Redis for the key's time to live. It starts as a claim, taken with SET NX
 * semantics in a script, so that of concurrent requests with one key, across processes, exactly one
 * goes on to create a job. The claim becomes the answer in the same MULTI that adds the job (see
 * the dispatcher), so a record that is still a claim always means that no job exists for it: a claim
 * left by a request that died is taken over once it is stale, and the retry creates the job.
 *
 * A Redis Cluster cannot put the record and the jobs in one transaction (they are in different
 * slots). There the claim becomes a plan, holding the answer to give, before any job is added; each
 * queue's add leaves a marker in that queue's slot, in its own transaction; the answer is written
 * last. A plan left by a request that died is resumed by a retry once it is stale: the jobs whose
 * marker is missing are added, under the planned ids, and the planned answer is given. Either way
 * one key makes one set of jobs.
 *
 * A record is named by a digest of the key, never by the key itself: on a cluster a `{...}` in a
 * key name picks its slot, which is not the client's to choose.
 */
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { RedisClient } from '../redis/connections.js';
import { scriptsIn } from '../redis/scripts.js';
import type { AtomicRecord } from '../contracts/dispatch.js';

const LUA_DIRECTORY = fileURLToPath(new URL('./lua/', import.meta.url));

/** What `Idempotency-Key` may hold: 1 to 255 visible ASCII characters. */
export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export type ClaimOutcome =
  | { readonly kind: 'claimed'; readonly token: string; readonly at: number }
  /** The key's first request died while adding its jobs: this is the answer it planned to give. */
  | { readonly kind: 'resume'; readonly token: string; readonly answer: unknown }
  /** The key's first request created its job: this was its answer. */
  | { readonly kind: 'replay'; readonly answer: unknown }
  /** The key was used with another body. */
  | { readonly kind: 'mismatch' }
  /** Another request holds the key and has not answered yet. */
  | { readonly kind: 'busy' };

export interface IdempotencyStore {
  claim(key: string, bodyHash: string): Promise<ClaimOutcome>;
  /**
   * The records that turn the claim into the answer: the answer, sent in the MULTI that adds the job
   * (or after the adds on a cluster), and the plan written before them on a cluster.
   */
  answerRecord(
    key: string,
    bodyHash: string,
    claim: { readonly token: string; readonly at: number },
    answer: unknown,
  ): AtomicRecord;
  /** Gives up a claim whose request failed before creating its job. */
  release(key: string, token: string): Promise<void>;
}

export interface IdempotencyStoreOptions {
  readonly redis: RedisClient;
  readonly prefix: string;
  readonly ttlSeconds: number;
  /** A claim older than this belonged to a request that died; it must exceed any request's life. */
  readonly staleClaimMs: number;
}

/**
 * Where a key's record was kept before it was named by a digest: `<prefix>:idempotency:<the key>`.
 * Such a record lives IDEMPOTENCY_TTL_SECONDS at most, so once every instance has run this version
 * that long, nothing reads it any more, and its lookup can go. Digest names cannot clash with it.
 */
const LEGACY_RECORD = 'idempotency';

/** The Redis key of a key's record: a digest of the key, in a slot no client chooses. */
export function idempotencyRecordKey(prefix: string, key: string): string {
  return `${prefix}:idempotency-sha256:${createHash('sha256').update(key).digest('base64url')}`;
}

type StoredRecord =
  | { readonly s: 'c'; readonly h: string }
  | { readonly s: 'p'; readonly h: string; readonly t: string; readonly at: number; readonly a: unknown }
  | { readonly s: 'd'; readonly h: string; readonly a: unknown };

export function createIdempotencyStore({
  redis,
  prefix,
  ttlSeconds,
  staleClaimMs,
}: IdempotencyStoreOptions): IdempotencyStore {
  const script = scriptsIn(redis, LUA_DIRECTORY);
  const claimScript = script('claim');
  const releaseScript = script('release');
  const recordKey = (key: string) => idempotencyRecordKey(prefix, key);
  /**
   * The answer a key was given before records were named by its digest (see `LEGACY_RECORD`): a
   * retry sent across the upgrade is answered with it, not enqueued again. Only an answer counts.
   */
  const answeredBeforeUpgrade = async (key: string, bodyHash: string): Promise<ClaimOutcome | undefined> => {
    const raw = await redis.get(`${prefix}:${LEGACY_RECORD}:${key}`);
    const record = raw === null ? undefined : (JSON.parse(raw) as StoredRecord);
    if (record?.s !== 'd') return undefined;
    return record.h === bodyHash ? { kind: 'replay', answer: record.a } : { kind: 'mismatch' };
  };

  return {
    async claim(key, bodyHash) {
      const token = randomBytes(12).toString('base64url');
      const reply = (await claimScript([recordKey(key)], [token, bodyHash, ttlSeconds, staleClaimMs])) as [
        string,
        (string | number)?,
      ];
      if (reply[0] === 'claimed') {
        const answered = await answeredBeforeUpgrade(key, bodyHash);
        if (answered === undefined) return { kind: 'claimed', token, at: Number(reply[1]) };
        await releaseScript([recordKey(key)], [token]);
        return answered;
      }
      const record = JSON.parse(String(reply[1] ?? '{}')) as StoredRecord;
      if (record.h !== bodyHash) return { kind: 'mismatch' };
      if (reply[0] === 'resume' && record.s === 'p') return { kind: 'resume', token: record.t, answer: record.a };
      return record.s === 'd' ? { kind: 'replay', answer: record.a } : { kind: 'busy' };
    },
    answerRecord: (key, bodyHash, { token, at }, answer) => ({
      key: recordKey(key),
      value: JSON.stringify({ s: 'd', h: bodyHash, a: answer } satisfies StoredRecord),
      plan: JSON.stringify({ s: 'p', h: bodyHash, t: token, at, a: answer } satisfies StoredRecord),
      marker: token,
      ttlSeconds,
    }),
    async release(key, token) {
      await releaseScript([recordKey(key)], [token]);
    },
  };
}

/**
 * A digest of a request body that two equal JSON documents share whatever their key order: a
 * client that rebuilds its body for a retry still sends "the same body".
 */
export function bodyHash(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('base64url');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
