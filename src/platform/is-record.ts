/**
 * The one test for "a plain JSON object": what job data and request bodies must be before their
 * fields are read, shared so that the HTTP layer and the consumer agree on it.
 */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
