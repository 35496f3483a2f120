/**
 * CPU as the OS and Redis count it, with no profiler: what a process (every thread, including those
 * that have ended) or one of its threads has used, from /proc, and what Redis has used, from
 * `INFO cpu`. A scenario reads these before and after a batch of jobs and divides by the jobs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/** Linux reports process CPU in ticks of 1/100 s (USER_HZ). */
const TICK_MICROS = 10_000;

/** User + system CPU from a /proc `stat` file: a process's (all threads) or one thread's. */
function cpuMicros(statFile: string): number {
  const stat = readFileSync(statFile, 'utf8');
  // Fields after the command name, which may hold spaces: utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MICROS;
}

/** A process's main thread is the task whose id is the pid. */
export const mainThreadCpu = (pid: number): number => cpuMicros(`/proc/${pid}/task/${pid}/stat`);
/** Every thread of a process, those that have ended included. */
export const processCpu = (pid: number): number => cpuMicros(`/proc/${pid}/stat`);

/**
 * Every live thread of a process, to the nanosecond: the time each has run on a CPU, from its
 * `schedstat`, where `stat` counts in ticks of 10 ms. A thread that ended since an earlier reading
 * takes its time out of the sum, so this suits processes whose threads all live (warm thread pools).
 */
export function liveThreadsCpu(pid: number): number {
  return readdirSync(`/proc/${pid}/task`).reduce((sum, task) => {
    try {
      const [runNanos] = readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ');
      return sum + Number(runNanos) / 1000;
    } catch {
      // The thread ended between the listing and the reading.
      return sum;
    }
  }, 0);
}

/** A process and its direct children (a cluster primary and the processes it forked). */
export function familyOf(pid: number): number[] {
  const children = readdirSync('/proc').flatMap((entry) => {
    if (!/^\d+$/.test(entry)) return [];
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The parent's pid is the second field after the command name.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      return ppid === pid ? [Number(entry)] : [];
    } catch {
      return [];
    }
  });
  return [pid, ...children];
}

/** CPU of every thread of every process of a family, in µs; a process gone since counts 0. */
export function familyCpu(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => {
    try {
      return sum + processCpu(pid);
    } catch {
      return sum;
    }
  }, 0);
}

export async function redisCpuMicros(client: Redis): Promise<number> {
  const info = await client.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6;
}
