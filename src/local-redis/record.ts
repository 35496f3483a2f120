/**
 * The private redis-server's record in its data directory (`server.json`): the port it listens on,
 * kept across runs so that every run of this data directory finds its server at the same place, and
 * for people reading it, the pids of the server, of the primary that owns it and of its watchdog.
 *
 * The port is the one thing read back. It is chosen once, by whichever start creates the record first
 * (an exclusive link, so two starts at once agree on one port), and only a redis-server that binds it
 * may write the directory's AOF: a second server on the same directory cannot bind a taken port.
 */
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

const recordSchema = z.object({
  port: z.number().int().min(1).max(65535),
  pid: z.number().int().positive().optional(),
  ownerPid: z.number().int().positive().optional(),
  watchdogPid: z.number().int().positive().optional(),
  updatedAt: z.string().optional(),
});

export type ServerRecord = z.infer<typeof recordSchema>;

export const RECORD_FILE = 'server.json';

export function recordPath(dataDir: string): string {
  return join(dataDir, RECORD_FILE);
}

export type RecordRead =
  | { readonly state: 'missing' }
  | { readonly state: 'invalid'; readonly problem: string }
  | { readonly state: 'found'; readonly record: ServerRecord };

export function readRecord(dataDir: string): RecordRead {
  let text: string;
  try {
    text = readFileSync(recordPath(dataDir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    throw error;
  }
  try {
    const parsed = recordSchema.safeParse(JSON.parse(text));
    if (parsed.success) return { state: 'found', record: parsed.data };
    return {
      state: 'invalid',
      problem: parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '),
    };
  } catch (error) {
    return { state: 'invalid', problem: error instanceof Error ? error.message : String(error) };
  }
}

function temporaryFile(dataDir: string, record: ServerRecord): string {
  const file = join(dataDir, `${RECORD_FILE}.${process.pid}.tmp`);
  writeFileSync(file, `${JSON.stringify({ ...record, updatedAt: new Date().toISOString() }, null, 2)}\n`);
  return file;
}

/**
 * Records `port` unless a record exists already, and returns the record that holds: ours, or the
 * one another start created a moment earlier. The file appears whole or not at all.
 */
export function createRecord(dataDir: string, port: number): ServerRecord {
  const file = temporaryFile(dataDir, { port });
  try {
    linkSync(file, recordPath(dataDir));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    rmSync(file, { force: true });
  }
  const read = readRecord(dataDir);
  if (read.state !== 'found')
    throw new Error(
      `${recordPath(dataDir)} could not be read back: ${read.state === 'invalid' ? read.problem : 'missing'}`,
    );
  return read.record;
}

/** Replaces the record in one step, so that a reader never sees half of it. */
export function writeRecord(dataDir: string, record: ServerRecord): void {
  renameSync(temporaryFile(dataDir, record), recordPath(dataDir));
}
