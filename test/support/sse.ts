/** A Server-Sent Events reader for tests of `GET /jobs/:id/events`. */

/** Reads a whole Server-Sent Events stream (bounded in time), parsed into events. */
export async function readEvents(
  url: string,
): Promise<{ status: number; contentType: string | null; events: { event: string; data: unknown }[] }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  const text = await response.text();
  const events = text
    .split('\n\n')
    .filter((block) => block.startsWith('event: '))
    .map((block) => {
      const [eventLine, dataLine] = block.split('\n');
      return {
        event: (eventLine ?? '').slice('event: '.length),
        data: JSON.parse((dataLine ?? '').slice('data: '.length)) as unknown,
      };
    });
  return { status: response.status, contentType: response.headers.get('content-type'), events };
}
