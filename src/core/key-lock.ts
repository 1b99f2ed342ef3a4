/**
 * Serialises async work per key within this process. moto's S3 conditional writes are not atomic under concurrent
 * requests (design.md §6) while AWS S3's are; writers that share a process (the local stack, the tests) are
 * serialised here as well, so that "two writers cannot both win" holds on both.
 */
const keyLocks = new Map<string, Promise<unknown>>();

export async function withKeyLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const previous = keyLocks.get(key) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(fn);
  keyLocks.set(key, run);
  try {
    return await run;
  } finally {
    if (keyLocks.get(key) === run) keyLocks.delete(key);
  }
}
