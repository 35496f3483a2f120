/**
 * Finding a service's log lines by what they say happened: the stable `event` field and the data
 * fields a line carries (`workerId`, `jobId`, `childPid`, ...), never the wording of `msg`, which is
 * written for people and may change without the behaviour changing.
 */

/** The lines of `event` whose fields equal every one of `fields`, in the order they were written. */
export function linesOf<Line extends { readonly event?: unknown }>(
  logs: readonly Line[],
  event: string,
  fields: Readonly<Record<string, unknown>> = {},
): Line[] {
  return logs.filter(
    (line) =>
      line.event === event &&
      Object.entries(fields).every(([key, value]) => (line as Readonly<Record<string, unknown>>)[key] === value),
  );
}

/** The first line of `event` with those fields, if one was written. */
export function lineOf<Line extends { readonly event?: unknown }>(
  logs: readonly Line[],
  event: string,
  fields: Readonly<Record<string, unknown>> = {},
): Line | undefined {
  return linesOf(logs, event, fields)[0];
}

/** Whether a line of `event` with those fields was written. */
export function logged<Line extends { readonly event?: unknown }>(
  logs: readonly Line[],
  event: string,
  fields: Readonly<Record<string, unknown>> = {},
): boolean {
  return lineOf(logs, event, fields) !== undefined;
}
