/**
 * A position in the job index (`jobIndexKey`, contracts/keys.ts), as the opaque `cursor` of `GET /jobs`. Many jobs
 * share one enqueue millisecond (a bulk request adds hundreds), so a score alone cannot say where a
 * page ended: the position is the score and the member, which together name one place in the sorted
 * set even after that member is gone. It travels as base64url JSON so that clients treat it as a
 * token; a cursor that does not decode to that shape is refused rather than guessed at.
 */

export interface IndexPosition {
  /** The entry's score: its job's enqueue time, in ms. */
  readonly score: number;
  /** The entry's member: its job id. */
  readonly member: string;
}

/** Longer than any cursor this module writes (job ids are at most 145 characters). */
export const MAX_CURSOR_LENGTH = 512;
const MAX_MEMBER_LENGTH = 256;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

export function encodeCursor({ score, member }: IndexPosition): string {
  return Buffer.from(JSON.stringify({ s: score, m: member }), 'utf8').toString('base64url');
}

/** The position a cursor names; undefined for anything this module did not write. */
export function decodeCursor(cursor: string): IndexPosition | undefined {
  if (cursor.length > MAX_CURSOR_LENGTH || !BASE64URL.test(cursor)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const { s, m, ...rest } = parsed as Record<string, unknown>;
  if (Object.keys(rest).length > 0) return undefined;
  if (typeof s !== 'number' || !Number.isFinite(s)) return undefined;
  if (typeof m !== 'string' || m.length === 0 || m.length > MAX_MEMBER_LENGTH) return undefined;
  return { score: s, member: m };
}
