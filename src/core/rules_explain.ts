/**
 * Asking why: which version of a calculation rule answers for a client on a
 * day, from which partition, and why (the client's own versions first, then
 * GLOBAL's), with the versions around it; and a rule's whole history, every
 * version and every audited change. Works on any {@linkcode IRulesStore}:
 * the live tables or the in-memory store loaded from the seed files.
 *
 * @module
 */

import { checkId, GLOBAL_CLIENT_ID } from "./keys.ts";
import type { IRulesStore } from "./protocols.ts";
import { coversDay, rangeText } from "./rules_logic.ts";
import { checkDate } from "./schema.ts";
import type { CalculationRule, CalculationRuleChange } from "./types.ts";

/** One partition's versions of a rule around a day. */
export interface PartitionVersions {
  /** The owner: the client, or `"GLOBAL"`. */
  clientId: string;
  /** Every version of the owner's rule, in `effectiveFrom` order. */
  versions: CalculationRule[];
  /** The version covering the day, if any. */
  covering: CalculationRule | null;
  /** The last version that ends before the day, if any. */
  previous: CalculationRule | null;
  /** The first version that starts after the day, if any. */
  next: CalculationRule | null;
}

/** Why a rule resolves as it does on a day. */
export interface RuleExplanation {
  /** The client asked for. */
  clientId: string;
  /** The rule. */
  ruleId: string;
  /** The day. */
  asOf: string;
  /** The version that answers, or `null` when none does (a read is a `RuleNotFoundError`). */
  answer: CalculationRule | null;
  /** Why, in one sentence. */
  reason: string;
  /** The client's own versions around the day; `null` when the client is GLOBAL. */
  own: PartitionVersions | null;
  /** GLOBAL's versions around the day. */
  global: PartitionVersions;
}

function around(clientId: string, versions: CalculationRule[], day: string): PartitionVersions {
  return {
    clientId,
    versions,
    covering: versions.find((v) => coversDay(v, day)) ?? null,
    previous: versions.findLast((v) => v.effectiveTo !== null && v.effectiveTo < day) ?? null,
    next: versions.find((v) => v.effectiveFrom > day) ?? null,
  };
}

/** Why a partition with versions has none covering the day. */
function missText(partition: PartitionVersions, day: string, what: string): string {
  const { clientId, previous, next } = partition;
  if (partition.versions.length === 0) return `${clientId} has no ${what}`;
  if (previous === null && next !== null) return `${clientId}'s ${what} starts ${next.effectiveFrom}`;
  if (previous !== null && next === null) return `${clientId}'s ${what} ended ${previous.effectiveTo}`;
  return `${clientId}'s ${what}s leave a gap on ${day}, between ${rangeText(previous!)} and ${rangeText(next!)}`;
}

/**
 * Explains which version of a calculation rule answers for a client on a
 * day: the client's version covering the day, else GLOBAL's, else none; and
 * why, in a sentence such as "ACME_CORP's override starts 2025-07-01;
 * GLOBAL's version 2024-01-01..open answers".
 *
 * @param store The rules store to ask.
 * @param clientId The client (or `"GLOBAL"`).
 * @param ruleId The rule.
 * @param asOf The day, `YYYY-MM-DD`.
 * @returns The answer, the reason, and each partition's versions around the day.
 * @throws {InvalidInputError} When an id is malformed or `asOf` is not a calendar date.
 *
 * @example Why ACME_CORP's overtime on 1 March 2025 is GLOBAL's
 * ```ts
 * import { explainCalculationRule, MemoryRulesStore } from "@bluestar/persistence";
 *
 * const store = new MemoryRulesStore({
 *   calculationRules: [
 *     { clientId: "GLOBAL", ruleId: "OVERTIME", ruleType: "multiplier_over_threshold", description: "FLSA",
 *       parameters: { multiplier: "1.5" }, effectiveFrom: "2024-01-01", effectiveTo: null },
 *     { clientId: "ACME_CORP", ruleId: "OVERTIME", ruleType: "multiplier_over_threshold", description: "Union",
 *       parameters: { multiplier: "2" }, effectiveFrom: "2025-07-01", effectiveTo: null },
 *   ],
 * });
 * const why = await explainCalculationRule(store, "ACME_CORP", "OVERTIME", "2025-03-01");
 * console.assert(why.reason === "ACME_CORP's override starts 2025-07-01; GLOBAL's version 2024-01-01..open answers");
 * ```
 */
export async function explainCalculationRule(
  store: IRulesStore,
  clientId: string,
  ruleId: string,
  asOf: string,
): Promise<RuleExplanation> {
  checkId("client id", clientId);
  checkId("rule id", ruleId);
  const day = checkDate("as-of date", asOf);
  const isGlobal = clientId === GLOBAL_CLIENT_ID;
  const [ownVersions, globalVersions] = await Promise.all([
    isGlobal ? Promise.resolve([]) : store.listCalculationRuleVersions(clientId, ruleId),
    store.listCalculationRuleVersions(GLOBAL_CLIENT_ID, ruleId),
  ]);
  const own = isGlobal ? null : around(clientId, ownVersions, day);
  const global = around(GLOBAL_CLIENT_ID, globalVersions, day);
  const answer = own?.covering ?? global.covering;
  const globalPart = global.covering === null
    ? `${missText(global, day, "version")}: no version answers`
    : `GLOBAL's version ${rangeText(global.covering)} ${own === null ? `covers ${day}` : "answers"}`;
  const reason = own?.covering
    ? `${clientId}'s own version ${rangeText(own.covering)} covers ${day}`
    : own === null
    ? globalPart
    : `${missText(own, day, "override")}; ${globalPart}`;
  return { clientId, ruleId, asOf: day, answer, reason, own, global };
}

/** A rule's history in one partition. */
export interface PartitionHistory {
  /** The owner: the client, or `"GLOBAL"`. */
  clientId: string;
  /** Every version, closed ones included, in `effectiveFrom` order. */
  versions: CalculationRule[];
  /** Every audited change of the rule, in the order made. */
  changes: CalculationRuleChange[];
}

/**
 * A calculation rule's history: every version and every audited change, of
 * the client's own rule and, for a client, of GLOBAL's (its fallback).
 *
 * @param store The rules store to ask.
 * @param clientId The client (or `"GLOBAL"`).
 * @param ruleId The rule.
 * @returns The client's history first, then GLOBAL's (one entry when the client is GLOBAL).
 * @throws {InvalidInputError} When an id is malformed.
 *
 * @example Every version of the Social Security wage base
 * ```ts
 * import { calculationRuleHistory, MemoryRulesStore } from "@bluestar/persistence";
 *
 * const [global] = await calculationRuleHistory(new MemoryRulesStore(), "GLOBAL", "FICA_SOCIAL_SECURITY");
 * console.assert(global.versions.length === 0 && global.changes.length === 0);
 * ```
 */
export async function calculationRuleHistory(
  store: IRulesStore,
  clientId: string,
  ruleId: string,
): Promise<PartitionHistory[]> {
  checkId("client id", clientId);
  checkId("rule id", ruleId);
  const owners = clientId === GLOBAL_CLIENT_ID ? [clientId] : [clientId, GLOBAL_CLIENT_ID];
  return await Promise.all(owners.map(async (owner) => {
    const [versions, changes] = await Promise.all([
      store.listCalculationRuleVersions(owner, ruleId),
      store.listRuleChanges(owner),
    ]);
    const ofRule = changes.filter((change): change is CalculationRuleChange =>
      change.kind === "calculation" && change.ruleId === ruleId
    );
    return { clientId: owner, versions, changes: ofRule };
  }));
}
