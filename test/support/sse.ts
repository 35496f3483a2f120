/** A Server-Sent Events reader for tests of `GET /jobs/:id/events`. */

export interface SseEvent {
  readonly event: string;
  readonly data: unknown;
}

export interface OpenStream {
  readonly status: number;
  readonly contentType: string | null;
  /** Every event, once the server has ended the stream (rejects if it does not within the time-out). */
  readonly ended: Promise<SseEvent[]>;
}

/**
 * Opens a stream and resolves once its headers have arrived: the server has taken the stream by then.
 * `ended` gives its events when the server ends it.
 */
export async function openEvents(
  url: string,
  { timeoutMs = 30_000 }: { timeoutMs?: number } = {},
): Promise<OpenStream> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const ended = response.text().then(parseEvents);
  // Seen by the caller later, or never (a test that fails first): not an unhandled rejection meanwhile.
  ended.catch(() => {});
  return { status: response.status, contentType: response.headers.get('content-type'), ended };
}

/** Reads a whole Server-Sent Events stream (bounded in time), parsed into events. */
export async function readEvents(
  url: string,
): Promise<{ status: number; contentType: string | null; events: SseEvent[] }> {
  const stream = await openEvents(url);
  return { status: stream.status, contentType: stream.contentType, events: await stream.ended };
}

/** The events of a stream's text: blocks separated by a blank line; comment lines (`: …`) are skipped. */
function parseEvents(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .map((block) => new Map(block.split('\n').map((line) => fieldOf(line))))
    .filter((fields) => fields.has('event'))
    .map((fields) => ({ event: fields.get('event') ?? '', data: JSON.parse(fields.get('data') ?? 'null') as unknown }));
}

function fieldOf(line: string): [string, string] {
  const colon = line.indexOf(':');
  return colon < 0 ? [line, ''] : [line.slice(0, colon), line.slice(colon + 1).replace(/^ /, '')];
}
