// Reference data for the reliability suites: GLOBAL calculation rules, some
// overridden per client, and the reads that cover both paths.
import type { CalculationRule, CalculationRuleRecord, RulesData } from "../../mod.ts";
import { MemoryRulesStore } from "../../src/persistence/memory_backend.ts";

/** A read of one calculation rule for one client. */
export interface RuleRead {
  clientId: string;
  ruleId: string;
}

/** Rules, reads over them, and what each read must return. */
export interface OverrideData {
  data: RulesData;
  /** Every client and rule pair: half answered by the client's override, half by GLOBAL. */
  reads: RuleRead[];
  /** The rule each read must return, from the in-memory reference store. */
  expected: Map<string, CalculationRule>;
}

/** The key of a read in {@linkcode OverrideData.expected}. */
export function readKey({ clientId, ruleId }: RuleRead): string {
  return `${clientId}\u0000${ruleId}`;
}

/**
 * `ruleCount` GLOBAL rules and `clientCount` clients; each client overrides
 * every other rule (offset by the client's index), so every client has both
 * override and fallback reads. The expected answers come from
 * `MemoryRulesStore`, the behavioural reference.
 */
export async function overrideData(clientCount = 5, ruleCount = 10): Promise<OverrideData> {
  const rule = (clientId: string, index: number): CalculationRuleRecord => ({
    clientId,
    ruleId: `RULE_${index}`,
    ruleType: "percentage",
    description: `Rule ${index} of ${clientId}`,
    parameters: { rate: `0.${index + 1}${clientId.length}`, cap: `${index}000.50`, exact: "1234567890.0123456789" },
    effectiveFrom: "2026-01-01",
    // Closed versions end far ahead, so reads without `asOf` (today) find them in any year the suite runs.
    effectiveTo: index % 3 === 0 ? null : "2099-12-31",
  });
  const clients = Array.from({ length: clientCount }, (_, index) => `CLIENT_${index}`);
  const calculationRules: CalculationRuleRecord[] = Array.from(
    { length: ruleCount },
    (_, index) => rule("GLOBAL", index),
  );
  clients.forEach((clientId, clientIndex) => {
    for (let index = clientIndex % 2; index < ruleCount; index += 2) calculationRules.push(rule(clientId, index));
  });
  const data: RulesData = { calculationRules };
  const reference = new MemoryRulesStore(data);
  const reads: RuleRead[] = [];
  const expected = new Map<string, CalculationRule>();
  for (const clientId of clients) {
    for (let index = 0; index < ruleCount; index++) {
      const read = { clientId, ruleId: `RULE_${index}` };
      reads.push(read);
      expected.set(readKey(read), await reference.getCalculationRule(read.clientId, read.ruleId));
    }
  }
  return { data, reads, expected };
}

/** Settles a promise into a value or the error it rejected with, so a batch never stops at the first failure. */
export async function outcome<T>(promise: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}
