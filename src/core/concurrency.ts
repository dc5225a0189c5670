/**
 * Bounded concurrency, for the places that fan out requests (part copies,
 * batch writes).
 *
 * @module
 */

/**
 * Maps items with at most `limit` calls in flight, results in input order.
 * After the first failure no new call starts; it rejects with that failure
 * once every started call has settled, so nothing is left running.
 *
 * @param items The items.
 * @param limit The most calls in flight (at least 1).
 * @param body The call for one item.
 * @returns The results, in input order.
 */
export async function mapConcurrently<T, R>(
  items: readonly T[],
  limit: number,
  body: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  let failure: unknown;
  const worker = async () => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await body(items[index], index);
      } catch (error) {
        if (!failed) failure = error;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failure;
  return results;
}
