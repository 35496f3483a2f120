/**
 * Idempotency keys: a client that sends `Idempotency-Key` with a task may send it again, after a
 * lost answer or a crash, and get the first answer back instead of a second job.
 *
 * A key's record lives in Redis for the key's time to live. It starts as a claim, taken with SET NX
 * semantics in a script, so that of concurrent requests with one key, across processes, exactly one
 * goes on to create a job. The claim becomes the answer in the same MULTI that adds the job (see
 * the dispatcher), so a record that is still a claim always means that no job exists for it: a claim
 * left by a request that died is taken over once it is stale, and the retry creates the job.
 */
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { RedisClient } from '../redis/connections.js';
import { scriptsIn } from '../redis/scripts.js';

const LUA_DIRECTORY = fileURLToPath(new URL('./lua/', import.meta.url));

/**
 * A claim this old belonged to a request that died between claiming its key and creating its job.
 * Every Redis call of a request is bounded by COMMAND_TIMEOUT_MS, so only a frozen process takes
 * this long; a retry meanwhile answers 409 with Retry-After.
 */
export const STALE_CLAIM_MS = 30_000;

/** What `Idempotency-Key` may hold: 1 to 255 visible ASCII characters. */
export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export type ClaimOutcome =
  | { readonly kind: 'claimed'; readonly token: string }
  /** The key's first request created its job: this was its answer. */
  | { readonly kind: 'replay'; readonly answer: unknown }
  /** The key was used with another body. */
  | { readonly kind: 'mismatch' }
  /** Another request holds the key and has not answered yet. */
  | { readonly kind: 'busy' };

export interface IdempotencyStore {
  claim(key: string, bodyHash: string): Promise<ClaimOutcome>;
  /** The command that turns the claim into the answer: to be sent in the MULTI that adds the job. */
  answerRecord(key: string, bodyHash: string, answer: unknown): { readonly key: string; readonly value: string };
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

type StoredRecord =
  { readonly s: 'c'; readonly h: string } | { readonly s: 'd'; readonly h: string; readonly a: unknown };

export function createIdempotencyStore({
  redis,
  prefix,
  ttlSeconds,
  staleClaimMs,
}: IdempotencyStoreOptions): IdempotencyStore {
  const script = scriptsIn(redis, LUA_DIRECTORY);
  const claimScript = script('claim');
  const releaseScript = script('release');
  const recordKey = (key: string) => `${prefix}:idempotency:${key}`;

  return {
    async claim(key, bodyHash) {
      const token = randomBytes(12).toString('base64url');
      const reply = (await claimScript([recordKey(key)], [token, bodyHash, ttlSeconds, staleClaimMs])) as [
        string,
        string?,
      ];
      if (reply[0] === 'claimed') return { kind: 'claimed', token };
      const record = JSON.parse(reply[1] ?? '{}') as StoredRecord;
      if (record.h !== bodyHash) return { kind: 'mismatch' };
      return record.s === 'd' ? { kind: 'replay', answer: record.a } : { kind: 'busy' };
    },
    answerRecord: (key, bodyHash, answer) => ({
      key: recordKey(key),
      value: JSON.stringify({ s: 'd', h: bodyHash, a: answer } satisfies StoredRecord),
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
