/**
 * `promise`, or a rejection with `error()` once `ms` have passed. The work itself goes on (a
 * module's top-level await cannot be stopped); only the wait for it ends.
 *
 * @example
 * await withTimeout(import(url), 15_000, () => new Error(`${url} did not finish loading`))
 */
export function withTimeout<T>(promise: Promise<T> | T, ms: number, error: () => Error): Promise<T> {
  // Any thenable is waited for under the deadline, not only native promises.
  if (typeof (promise as { then?: unknown } | null)?.then !== 'function') return Promise.resolve(promise);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error()), ms);
    timer.unref?.();
  });
  return Promise.race([Promise.resolve(promise), late]).finally(() => clearTimeout(timer));
}
