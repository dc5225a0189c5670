/**
 * Rules-store behaviour every backend shares, so that the reference and the
 * real backends cannot drift: scoping, ordering, version checks.
 *
 * @module
 */

import { ConflictError, InvalidInputError, quote, RuleNotFoundError } from "./errors.ts";
import { checkId, GLOBAL_CLIENT_ID } from "./keys.ts";
import type {
  AuditEntry,
  BatchState,
  BatchStatus,
  CalculationRule,
  CalculationRuleVersion,
  RuleChange,
  RuleScope,
  ValidationRule,
  ValidationRuleVersion,
  VersionChange,
} from "./types.ts";
import { BATCH_STATUSES, MAX_UPDATE_KEYS } from "./types.ts";

/**
 * A stored rule with its `scope`: `GLOBAL` when the GLOBAL partition
 * answered, `CLIENT` otherwise. Returns a copy.
 *
 * @param record The stored rule.
 * @returns The rule as read.
 */
export function scoped<T extends CalculationRuleVersion | ValidationRuleVersion>(
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

// ---- rules over time ------------------------------------------------------

/** The days a version applies: `effectiveFrom` to `effectiveTo` inclusive (`null`: open-ended). */
export interface EffectiveRange {
  /** The first day, `YYYY-MM-DD`. */
  effectiveFrom: string;
  /** The last day, `YYYY-MM-DD`, or `null` when open-ended. */
  effectiveTo: string | null;
}

/**
 * A range as messages show it: `2024-01-01..2024-12-31`, `2024-01-01..open`.
 *
 * @param range The range.
 * @returns The text.
 */
export function rangeText(range: EffectiveRange): string {
  return `${range.effectiveFrom}..${range.effectiveTo ?? "open"}`;
}

/**
 * Whether two ranges share a day. Dates are `YYYY-MM-DD`, so text order is
 * day order.
 *
 * @param a A range.
 * @param b Another range.
 * @returns Whether they overlap.
 */
export function rangesOverlap(a: EffectiveRange, b: EffectiveRange): boolean {
  return (b.effectiveTo === null || a.effectiveFrom <= b.effectiveTo) &&
    (a.effectiveTo === null || b.effectiveFrom <= a.effectiveTo);
}

/**
 * Why a range is no range (it ends before it starts), or `undefined`.
 *
 * @param range The range, its dates already checked.
 * @returns The problem, or `undefined`.
 */
export function rangeOrderProblem(range: EffectiveRange): string | undefined {
  return range.effectiveTo !== null && range.effectiveTo < range.effectiveFrom
    ? `it ends on ${range.effectiveTo}, before it starts on ${range.effectiveFrom}`
    : undefined;
}

/**
 * Whether a version applies on a day.
 *
 * @param range The version's range.
 * @param day The day, `YYYY-MM-DD`.
 * @returns Whether the range covers it.
 */
export function coversDay(range: EffectiveRange, day: string): boolean {
  return range.effectiveFrom <= day && (range.effectiveTo === null || day <= range.effectiveTo);
}

/**
 * The calendar day before a day.
 *
 * @param day A valid day, `YYYY-MM-DD`, after 0000-01-01.
 * @returns The day before, `YYYY-MM-DD`.
 */
export function dayBefore(day: string): string {
  const time = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0 to 99 as 1900 to 1999.
  time.setUTCFullYear(Number(day.slice(0, 4)), Number(day.slice(5, 7)) - 1, Number(day.slice(8, 10)) - 1);
  return time.toISOString().slice(0, 10);
}

/**
 * The calculation rule in effect on a day: the client's version covering it,
 * else GLOBAL's.
 *
 * @param own The client's versions (for GLOBAL itself, `[]`).
 * @param global GLOBAL's versions.
 * @param day The day.
 * @returns The rule with its scope, or `undefined` when no version covers the day.
 */
export function calculationRuleAsOf(
  own: readonly CalculationRuleVersion[],
  global: readonly CalculationRuleVersion[],
  day: string,
): CalculationRule | undefined {
  const version = calculationVersionAsOf(own, global, day);
  return version === undefined ? undefined : scoped(version);
}

/**
 * The stored version of a calculation rule in effect on a day, as
 * {@linkcode calculationRuleAsOf} picks it, itself (not a copy): a caller
 * that keeps versions frozen can build its rule once.
 *
 * @param own The client's versions (for GLOBAL itself, `[]`).
 * @param global GLOBAL's versions.
 * @param day The day.
 * @returns The version, or `undefined` when none is in effect.
 *
 * @example The version in effect
 * ```ts
 * import { calculationVersionAsOf } from "./rules_logic.ts";
 *
 * console.assert(calculationVersionAsOf([], [], "2025-01-01") === undefined);
 * ```
 */
export function calculationVersionAsOf(
  own: readonly CalculationRuleVersion[],
  global: readonly CalculationRuleVersion[],
  day: string,
): CalculationRuleVersion | undefined {
  for (const version of own) if (coversDay(version, day)) return version;
  for (const version of global) if (coversDay(version, day)) return version;
  return undefined;
}

/**
 * The validation rules of a field in effect on a day: the client's in effect
 * then when it has any, else GLOBAL's in effect then, sorted by rule id.
 *
 * @param own The client's versions for the field (for GLOBAL itself, `[]`).
 * @param global GLOBAL's versions for the field.
 * @param day The day.
 * @returns The rules with their scope; `[]` when none is in effect.
 */
export function validationRulesAsOf(
  own: readonly ValidationRuleVersion[],
  global: readonly ValidationRuleVersion[],
  day: string,
): ValidationRule[] {
  const mine = own.filter((v) => coversDay(v, day));
  return (mine.length > 0 ? mine : global.filter((v) => coversDay(v, day))).map(scoped).sort(compareVersions);
}

/** A stored version of either kind of rule. */
type Version = (CalculationRuleVersion | ValidationRuleVersion) & EffectiveRange;

/**
 * Version order: by rule id, then `effectiveFrom` (a validation item holds
 * every rule id of its field; a calculation item one).
 *
 * @param a A version.
 * @param b Another version.
 * @returns Negative, zero or positive.
 */
export function compareVersions(a: Version, b: Version): number {
  return compareText(a.ruleId, b.ruleId) || compareText(a.effectiveFrom, b.effectiveFrom);
}

/** What a change does to one owner's stored versions. */
export interface VersionPlan<V> {
  /** Every version after the change, in {@linkcode compareVersions} order. */
  versions: V[];
  /** The version added, corrected or removed, before and after. */
  change: VersionChange<V>;
  /** The open-ended earlier version closed the day before, before and after, or `null`. */
  closed: { before: V; after: V } | null;
}

/**
 * Plans a change of one version against an owner's stored versions: a new
 * `effectiveFrom` adds a version (closing an open-ended earlier one on the
 * day before), the `effectiveFrom` of a stored version corrects it when
 * `expectedRevision` is its revision. Pure: the memory and DynamoDB stores
 * both apply what it returns, so they cannot drift.
 *
 * @param action The action, for messages (`'put calculation rule "R" for client "C"'`).
 * @param stored The owner's stored versions (all rule ids of the item).
 * @param input The version to store, decoded, without a revision.
 * @param expectedRevision The caller's expected revision, if any.
 * @returns The versions after the change, and what changed.
 * @throws {InvalidInputError} When the range ends before it starts, or `expectedRevision` is not a non-negative integer.
 * @throws {ConflictError} When the version overlaps another of the same rule, or a correction's revision is missing or stale.
 */
export function planVersionChange<V extends Version>(
  action: string,
  stored: readonly V[],
  input: Omit<V, "revision">,
  expectedRevision: number | undefined,
): VersionPlan<V> {
  const range = input as EffectiveRange;
  const order = rangeOrderProblem(range);
  if (order !== undefined) throw new InvalidInputError(`Failed to ${action}: ${order}`);
  if (expectedRevision !== undefined && (!Number.isSafeInteger(expectedRevision) || expectedRevision < 0)) {
    throw new InvalidInputError(
      `Failed to ${action}: expected revision ${quote(expectedRevision)} is not a non-negative integer`,
    );
  }
  const from = range.effectiveFrom;
  const others = stored.filter((v) => v.ruleId !== input.ruleId);
  const mine = stored.filter((v) => v.ruleId === input.ruleId);
  const existing = mine.find((v) => v.effectiveFrom === from);
  let rest: V[];
  let closed: { before: V; after: V } | null = null;
  let after: V;
  if (existing !== undefined) {
    if (expectedRevision === undefined) {
      throw new ConflictError(
        `Failed to ${action}: the version ${
          rangeText(existing)
        } is stored (revision ${existing.revision}); a correction needs expectedRevision ${existing.revision}`,
      );
    }
    if (expectedRevision !== existing.revision) {
      throw new ConflictError(
        `Failed to ${action}: expected revision ${expectedRevision} of the version ${
          rangeText(existing)
        }, stored revision is ${existing.revision}`,
      );
    }
    after = { ...input, revision: existing.revision + 1 } as V;
    rest = mine.filter((v) => v !== existing);
  } else {
    if (expectedRevision !== undefined && expectedRevision !== 0) {
      throw new ConflictError(
        `Failed to ${action}: expected revision ${expectedRevision}, but no version from ${from} is stored`,
      );
    }
    after = { ...input, revision: 1 } as V;
    const open = mine.find((v) => v.effectiveTo === null && v.effectiveFrom < from);
    if (open !== undefined) {
      closed = { before: open, after: { ...open, effectiveTo: dayBefore(from), revision: open.revision + 1 } };
    }
    rest = mine.map((v) => (v === open ? closed!.after : v));
  }
  const overlapped = rest.find((v) => rangesOverlap(v, range));
  if (overlapped !== undefined) {
    throw new ConflictError(
      `Failed to ${action}: the range ${rangeText(range)} overlaps the stored version ${
        rangeText(overlapped)
      } (revision ${overlapped.revision})`,
    );
  }
  return {
    versions: [...others, ...rest, after].sort(compareVersions),
    change: { before: existing ?? null, after },
    closed,
  };
}

/**
 * Plans the removal of one version from an owner's stored versions: the
 * version of `ruleId` from `effectiveFrom`, when `expectedRevision` is its
 * revision. The neighbouring versions stay as they are (the days it covered
 * fall back to GLOBAL, or to no rule). Pure, as {@linkcode planVersionChange}.
 *
 * @param action The action, for messages (`'remove calculation rule "R" for client "C" from 2025-01-01'`).
 * @param stored The owner's stored versions (all rule ids of the item).
 * @param ruleId The rule id of the version.
 * @param effectiveFrom The first day of the version.
 * @param expectedRevision The caller's expected revision: required.
 * @returns The versions after the removal; the change's `after` is `null`.
 * @throws {RuleNotFoundError} When no such version is stored; the message names client, rule and day.
 * @throws {ConflictError} When `expectedRevision` is missing or not the stored revision.
 */
export function planVersionRemoval<V extends Version>(
  action: string,
  stored: readonly V[],
  ruleId: string,
  effectiveFrom: string,
  expectedRevision: number | undefined,
): VersionPlan<V> {
  const existing = stored.find((v) => v.ruleId === ruleId && v.effectiveFrom === effectiveFrom);
  if (existing === undefined) {
    throw new RuleNotFoundError(`Failed to ${action}: no version from ${effectiveFrom} is stored`);
  }
  if (expectedRevision !== existing.revision) {
    const expected = expectedRevision === undefined ? "no expectedRevision" : `expected revision ${expectedRevision}`;
    throw new ConflictError(
      `Failed to ${action}: ${expected} for the version ${
        rangeText(existing)
      }, stored revision is ${existing.revision}`,
    );
  }
  return { versions: stored.filter((v) => v !== existing), change: { before: existing, after: null }, closed: null };
}

/** Who made a change, why and when, and its id. */
export interface ChangeStamp {
  /** The change's id. */
  changeId: string;
  /** When, stored UTC form. */
  at: string;
  /** Who. */
  actor: string;
  /** Why. */
  reason: string;
}

function scopedChange<V extends Version>(change: VersionChange<V>) {
  return {
    before: change.before === null ? null : scoped(change.before),
    after: change.after === null ? null : scoped(change.after),
  };
}

/**
 * The audit record of a planned change.
 *
 * @param plan The plan.
 * @param stamp Who, why, when, and the change's id.
 * @returns The record; of kind `validation` when the versions are validation rules.
 */
export function ruleChangeOf<V extends Version>(plan: VersionPlan<V>, stamp: ChangeStamp): RuleChange {
  // A removal has no version after: the version it removed names the rule.
  const after = (plan.change.after ?? plan.change.before)!;
  const common = { ...stamp, clientId: after.clientId, ruleId: after.ruleId };
  const versions = { ...scopedChange(plan.change), closed: plan.closed === null ? null : scopedChange(plan.closed) };
  // V is one kind of version or the other, and only validation rules have a field.
  const change = "field" in after
    ? { ...common, kind: "validation", field: after.field, ...versions }
    : { ...common, kind: "calculation", ...versions };
  return change as unknown as RuleChange;
}

/**
 * Rule change order: by `at` (canonical UTC text), then by id.
 *
 * @param a A change.
 * @param b Another change.
 * @returns Negative, zero or positive.
 */
export function compareRuleChanges(a: RuleChange, b: RuleChange): number {
  return compareText(a.at, b.at) || compareText(a.changeId, b.changeId);
}

/**
 * A clock of change times that never repeats or goes back within one
 * store: each time is at least a millisecond after the last, so changes one
 * process makes list in the order it made them even within a millisecond.
 *
 * @param now The clock, epoch milliseconds.
 * @returns A function giving the next change time as stored UTC text.
 */
export function changeClock(now: () => number): () => string {
  let last = -Infinity;
  return () => {
    last = Math.max(now(), last + 1);
    return new Date(last).toISOString();
  };
}

/**
 * Today in UTC, `YYYY-MM-DD`.
 *
 * @param now The clock, epoch milliseconds.
 * @returns The day.
 */
export function todayUtc(now: () => number): string {
  return new Date(now()).toISOString().slice(0, 10);
}

/**
 * The error of a read no version answers.
 *
 * @param clientId The client.
 * @param ruleId The rule.
 * @param day The day resolved for.
 * @returns The error, naming client, rule and day.
 */
export function ruleNotFound(clientId: string, ruleId: string, day: string): RuleNotFoundError {
  return new RuleNotFoundError(
    `Calculation rule ${quote(ruleId)} not found for client ${quote(clientId)} or GLOBAL on ${day}`,
  );
}
