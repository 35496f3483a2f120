/**
 * A time limit on work that cannot be cancelled: the caller stops waiting at the deadline, the work
 * runs on. One helper for the request transactions of a Redis Cluster and the bounded stops of a
 * process's shutdown, which both need exactly that.
 */

/** `work`'s outcome, or a rejection with `message` once `ms` have passed without it settling. */
export async function withDeadline<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}
