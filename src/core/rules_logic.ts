/**
 * Rules-store behaviour every backend shares, so that the reference and the
 * real backends cannot drift: scoping, ordering, version checks.
 *
 * @module
 */

import { InvalidInputError, quote } from "./errors.ts";
import { checkId, GLOBAL_CLIENT_ID } from "./keys.ts";
import { MAX_LABEL_BYTES } from "./values.ts";
import type {
  AuditEntry,
  BatchState,
  BatchStatus,
  CalculationRuleRecord,
  RuleScope,
  ValidationRuleRecord,
} from "./types.ts";
import { BATCH_STATUSES, MAX_UPDATE_KEYS } from "./types.ts";

/**
 * A stored rule with its `scope`: `GLOBAL` when the GLOBAL partition
 * answered, `CLIENT` otherwise. Returns a copy.
 *
 * @param record The stored rule.
 * @returns The rule as read.
 */
export function scoped<T extends CalculationRuleRecord | ValidationRuleRecord>(
  record: T,
): T & { scope: RuleScope } {
  const scope: RuleScope = record.clientId === GLOBAL_CLIENT_ID ? "GLOBAL" : "CLIENT";
  return { ...structuredClone(record), scope };
}

/**
 * Audit order: by timestamp (canonical UTC text, so text order is time
 * order), then by entry id.
 *
 * @param a An entry.
 * @param b Another entry.
 * @returns Negative, zero or positive.
 */
export function compareAuditEntries(a: AuditEntry, b: AuditEntry): number {
  return compareText(a.timestamp, b.timestamp) || compareText(a.entryId, b.entryId);
}

/**
 * Status-listing order: most recently updated first, then by batch id.
 *
 * @param a A state.
 * @param b Another state.
 * @returns Negative, zero or positive.
 */
export function compareBatchesByRecency(a: BatchState, b: BatchState): number {
  return compareText(b.updatedAt, a.updatedAt) || compareText(a.batchId, b.batchId);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Checks that a state belongs to its batch and that an expected version, if
 * any, is a non-negative integer below the state's version.
 *
 * @param action The action, for the message.
 * @param batchId The batch the state is saved under.
 * @param state The decoded state.
 * @param expectedVersion The version the stored state must have, if any.
 * @throws {InvalidInputError} When any of that does not hold.
 */
export function checkExpectedVersion(
  action: string,
  batchId: string,
  state: BatchState,
  expectedVersion: number | undefined,
): void {
  if (state.batchId !== batchId) {
    throw new InvalidInputError(`Failed to ${action}: the state is for batch ${quote(state.batchId)}`);
  }
  if (expectedVersion === undefined) return;
  if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) {
    throw new InvalidInputError(
      `Failed to ${action}: expected version ${quote(expectedVersion)} is not a non-negative integer`,
    );
  }
  if (state.version <= expectedVersion) {
    throw new InvalidInputError(
      `Failed to ${action}: version ${state.version} is not above expected version ${expectedVersion}`,
    );
  }
}

/**
 * Checks a batch status argument.
 *
 * @param status The candidate status.
 * @throws {InvalidInputError} When it is not a batch status.
 */
export function checkBatchStatus(status: unknown): asserts status is BatchStatus {
  if (!BATCH_STATUSES.includes(status as BatchStatus)) {
    throw new InvalidInputError(
      `Invalid batch status ${quote(status)}: it is not one of ${BATCH_STATUSES.join(", ")}`,
    );
  }
}

/**
 * Checks the options of `sealAuditTrail`: an actor that is text of 1 to
 * `MAX_LABEL_BYTES` UTF-8 bytes.
 *
 * @param action The action, for the message.
 * @param options The candidate options.
 * @returns The actor.
 * @throws {InvalidInputError} When the actor is missing or not such text.
 */
export function checkSealActor(action: string, options: unknown): string {
  const actor = (options as { actor?: unknown } | null | undefined)?.actor;
  if (typeof actor !== "string" || actor === "" || new TextEncoder().encode(actor).length > MAX_LABEL_BYTES) {
    throw new InvalidInputError(
      `Failed to ${action}: actor ${quote(actor)} is not text of 1 to ${MAX_LABEL_BYTES} bytes`,
    );
  }
  return actor;
}

/**
 * The `updateKeys` of a state written with an idempotency key: the key
 * appended, the last `MAX_UPDATE_KEYS` kept.
 *
 * @param keys The keys the state carries.
 * @param key The write's key.
 * @returns The keys to store.
 */
export function withUpdateKey(keys: readonly string[] | undefined, key: string): string[] {
  return [...(keys ?? []).filter((known) => known !== key), key].slice(-MAX_UPDATE_KEYS);
}

/**
 * Checks an idempotency key, when there is one.
 *
 * @param action The action, for the message.
 * @param key The candidate key.
 * @throws {InvalidInputError} When it is not a valid id.
 */
export function checkIdempotencyKey(action: string, key: unknown): void {
  if (key === undefined) return;
  try {
    checkId("idempotency key", key);
  } catch (error) {
    throw new InvalidInputError(`Failed to ${action}: ${(error as Error).message}`, { cause: error });
  }
}
