/**
 * Which file runs a job name. The handler folder is listed once at start-up; a job name maps to the
 * file of the same name there, or to the built-in dummy. Job names never become paths by themselves,
 * so a crafted name cannot load anything outside the folder.
 */
import { readdirSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { basename, join } from 'node:path';

export interface HandlerRegistry {
  /** The module URL that runs `jobName`. */
  resolve(jobName: string): string;
  readonly names: readonly string[];
}

export function createHandlerRegistry({
  directory,
  fallback,
}: {
  directory: string;
  fallback: string;
}): HandlerRegistry {
  const files = new Map<string, string>();
  for (const file of readdirSync(directory)) {
    if (file.endsWith('.js')) files.set(basename(file, '.js'), pathToFileURL(join(directory, file)).href);
  }
  const fallbackUrl = pathToFileURL(fallback).href;
  return {
    resolve: (jobName) => files.get(jobName) ?? fallbackUrl,
    names: Object.freeze([...files.keys()].sort()),
  };
}
