/**
 * Read-modify-write of a batch state with optimistic versions, retried on
 * conflict: the helper that keeps concurrent agents from losing updates.
 *
 * @module
 */

import { ConflictError, InvalidInputError, quote, RulesStoreError } from "../core/errors.ts";
import { checkIdempotencyKey, withUpdateKey } from "../core/rules_logic.ts";
import type { IRulesStore } from "../core/protocols.ts";
import { backoffDelay, sleep as wait } from "../core/time.ts";
import type { BatchState } from "../core/types.ts";

/** Options of {@linkcode updateBatchState}. */
export interface UpdateBatchStateOptions {
  /**
   * Attempts in all, the first included, before the conflict is thrown.
   *
   * @default {20}
   */
  maxAttempts?: number;
  /**
   * The first retry's delay ceiling in milliseconds; it doubles per attempt,
   * up to one second, and the delay is random below it (full jitter).
   *
   * @default {5}
   */
  baseDelayMs?: number;
  /**
   * The random source for jitter, in [0, 1).
   *
   * @default {Math.random}
   */
  random?: () => number;
  /**
   * How to wait; inject one so tests need not sleep.
   *
   * @default {setTimeout}
   */
  sleep?: (milliseconds: number) => Promise<void>;
  /**
   * Exactly once: the key of this logical update, the same on every retry
   * of it (yours too, after a crash or a timeout). A state that remembers
   * the key (in its `updateKeys`, the last 64 keyed writes) has the update
   * already: it is returned as it is and `update` is not applied again,
   * even when other writers' updates landed in between. A write whose
   * outcome is unknown is settled by reading the state again. Without a
   * key, an update whose answer was lost can be a `RulesStoreError` after
   * it landed, and retrying it yourself may apply it twice.
   *
   * @default {undefined}
   */
  idempotencyKey?: string;
}

/** The new state an update returns; its version and `updateKeys` are set by the helper. */
export type BatchStateUpdate = Omit<BatchState, "version" | "updateKeys"> & { version?: number; updateKeys?: string[] };

/**
 * Reads a batch's state, applies `update`, and writes the result with the
 * next version, expecting the version it read; on a `ConflictError` (another
 * writer got there first) it reads again and retries. Every successful call
 * raises the version by exactly one, so no update is lost. The state's
 * `updateKeys` are carried over from the state read, whatever `update`
 * returns, so the keys of earlier updates are never forgotten early.
 *
 * @param store The rules store.
 * @param batchId The batch.
 * @param update Computes the new state from the current one (`null`: none yet). It may run more than once.
 * @param options Retry policy.
 * @returns The state as written.
 * @throws {ConflictError} When every attempt lost to another writer.
 * @throws {InvalidInputError} When the update returns a malformed state.
 * @throws {RulesStoreError} When the store fails, or cannot know whether a write landed (it is not retried, so an update is never applied twice).
 *
 * @example Advance a batch one step
 * ```ts
 * import { MemoryRulesStore, updateBatchState } from "@bluestar/persistence";
 *
 * const store = new MemoryRulesStore();
 * const state = await updateBatchState(store, "B1", (current) => ({
 *   batchId: "B1",
 *   clientId: "ACME",
 *   planId: "DEFAULT_BiWeeklyFri",
 *   status: "running",
 *   currentStep: (current?.currentStep ?? 0) + 100,
 *   updatedAt: new Date().toISOString(),
 *   data: {},
 * }));
 * console.assert(state.version === 1 && state.currentStep === 100);
 * ```
 */
export async function updateBatchState(
  store: IRulesStore,
  batchId: string,
  update: (current: BatchState | null) => BatchStateUpdate,
  options: UpdateBatchStateOptions = {},
): Promise<BatchState> {
  const { maxAttempts = 20, baseDelayMs = 5, random = Math.random, sleep = wait, idempotencyKey } = options;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new InvalidInputError(`Invalid maxAttempts ${quote(maxAttempts)}: it is not a positive integer`);
  }
  checkIdempotencyKey(`update batch state ${quote(batchId)}`, idempotencyKey);
  for (let attempt = 1;; attempt++) {
    const current = await store.getBatchState(batchId);
    if (idempotencyKey !== undefined && current?.updateKeys?.includes(idempotencyKey)) return current;
    const expectedVersion = current?.version ?? 0;
    const { updateKeys: _, ...fields } = update(current);
    const next: BatchState = {
      ...fields,
      version: expectedVersion + 1,
      ...(current?.updateKeys === undefined ? {} : { updateKeys: current.updateKeys }),
    };
    try {
      await store.saveBatchState(batchId, next, { expectedVersion, idempotencyKey });
      return idempotencyKey === undefined
        ? next
        : { ...next, updateKeys: withUpdateKey(next.updateKeys, idempotencyKey) };
    } catch (error) {
      let lost = error instanceof ConflictError;
      if (!lost && idempotencyKey !== undefined && error instanceof RulesStoreError) {
        // The outcome may be unknown: the state says whether this update is in it. Without the key but
        // at a later version, another writer got there first and this write did not land: a conflict.
        const stored = await store.getBatchState(batchId);
        if (stored?.updateKeys?.includes(idempotencyKey)) return stored;
        lost = (stored?.version ?? 0) > expectedVersion;
      }
      if (!lost) throw error;
      if (attempt >= maxAttempts) {
        throw new ConflictError(
          `Failed to update batch state ${quote(batchId)}: other writers won all ${maxAttempts} attempts`,
          { cause: error },
        );
      }
      await sleep(backoffDelay({ baseDelayMs, maxDelayMs: 1000 }, attempt, random));
    }
  }
}
