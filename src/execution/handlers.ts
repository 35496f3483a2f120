/**
 * Which file runs a job name, and which names a task may have. The handler folder is listed once at
 * start-up; a job name maps to the file of the same name there, or to the built-in dummy. Job names
 * never become paths by themselves, so a crafted name cannot load anything outside the folder.
 *
 * The dummy runs only the names it is meant for: its example, and DUMMY_JOB_NAMES (`*` for any). A
 * task of any other name without a file is refused at enqueue, so that a typo in a job name is not
 * run by the dummy and reported completed, as if the work had been done.
 */
import { readdirSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { basename, join } from 'node:path';

/** The job name of the README's and the API document's examples: the dummy always serves it. */
export const DUMMY_EXAMPLE_JOB_NAME = 'videoProcessing';

export interface HandlerRegistry {
  /**
   * The module URL that runs `jobName`: its file, or the dummy. A name the registry does not accept
   * still resolves to the dummy: such a job was accepted by a service configured otherwise.
   */
  resolve(jobName: string): string;
  /** The job names that have a handler file. */
  readonly names: readonly string[];
  /** Whether a task of this name may be enqueued: it has a file, or the dummy is meant to run it. */
  accepts(jobName: string): boolean;
  /** What `accepts` takes, sorted, for a refusal to list: `*` stands for any name. */
  readonly accepted: readonly string[];
  /**
   * The names that get a `job_name` label of their own: those accepted by name. Under `*` the rest
   * share `other`, or labels would grow with whatever clients send.
   */
  readonly labelled: readonly string[];
}

export function createHandlerRegistry({
  directory,
  fallback,
  dummyJobNames,
}: {
  directory: string;
  fallback: string;
  /** DUMMY_JOB_NAMES: what the dummy runs besides DUMMY_EXAMPLE_JOB_NAME. */
  dummyJobNames: '*' | readonly string[];
}): HandlerRegistry {
  const files = new Map<string, string>();
  for (const file of readdirSync(directory)) {
    if (file.endsWith('.js')) files.set(basename(file, '.js'), pathToFileURL(join(directory, file)).href);
  }
  const fallbackUrl = pathToFileURL(fallback).href;
  const dummy = new Set(dummyJobNames === '*' ? ['*'] : [DUMMY_EXAMPLE_JOB_NAME, ...dummyJobNames]);
  const any = dummy.has('*');
  return {
    resolve: (jobName) => files.get(jobName) ?? fallbackUrl,
    names: Object.freeze([...files.keys()].sort()),
    accepts: (jobName) => any || files.has(jobName) || dummy.has(jobName),
    accepted: Object.freeze([...new Set([...files.keys(), ...dummy])].sort()),
    labelled: Object.freeze(
      [...new Set([...files.keys(), DUMMY_EXAMPLE_JOB_NAME, ...dummy])].filter((name) => name !== '*').sort(),
    ),
  };
}
