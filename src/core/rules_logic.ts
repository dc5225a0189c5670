/**
 * Rules-store behaviour every backend shares, so that the reference and the
 * real backends cannot drift: scoping, ordering, version checks.
 *
 * @module
 */

import { InvalidInputError, quote } from "./errors.ts";
import { GLOBAL_CLIENT_ID } from "./keys.ts";
import type {
  AuditEntry,
  BatchState,
  BatchStatus,
  CalculationRuleRecord,
  RuleScope,
  ValidationRuleRecord,
} from "./types.ts";
import { BATCH_STATUSES } from "./types.ts";

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

/**
 * Text order by UTF-16 code units, the order every backend sorts ids in
 * (never `localeCompare`, which varies by locale).
 *
 * @param a A text.
 * @param b Another text.
 * @returns Negative, zero or positive.
 *
 * @example Sort ids
 * ```ts
 * import { compareText } from "./rules_logic.ts";
 *
 * console.assert(["b", "B", "a"].sort(compareText).join("") === "Bab");
 * ```
 */
export function compareText(a: string, b: string): number {
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
