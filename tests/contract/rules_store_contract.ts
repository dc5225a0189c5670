// The IRulesStore contract: every backend runs this suite unchanged.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  type CalculationRuleInput,
  ConflictError,
  InvalidInputError,
  IrsLimitsNotFoundError,
  type IRulesStore,
  MAX_DESCRIPTION_BYTES,
  MAX_ERROR_BYTES,
  MAX_LABEL_BYTES,
  MAX_PAYLOAD_BYTES,
  PipelineNotFoundError,
  RuleNotFoundError,
  type RulesData,
  type ValidationRuleInput,
} from "../../mod.ts";
import {
  auditEntry,
  BAD_IDS,
  batchState,
  DECIMAL_38,
  processingResult,
  PROTOTYPE_NAMES,
  RULES_FIXTURE,
  uniqueId,
  UTC_OFFSETS,
} from "./fixtures.ts";

/** A store loaded with the given data, and how to dispose of it. */
export interface RulesStoreUnderTest {
  store: IRulesStore;
  cleanup(): Promise<void>;
  /**
   * Another store on the same data, sharing the first one's cache when it
   * has one (another process, as far as a reader can tell); the memory
   * store, which has no cache, is its own peer.
   */
  peer?(): Promise<IRulesStore>;
  /** Makes the next rule change fail while writing its audit record, so that the suite can check that neither lands. */
  failNextRuleChangeAudit?(): void;
}

/** What the suite hands the backend's `open`. */
export interface RulesStoreTestOptions {
  /** The store's clock: the suite's "today" is a fixed day, so no test depends on when it runs. */
  now: () => number;
}

/** The suite's "today": a day inside every fixture version that tests read without `asOf`. */
export const CONTRACT_TODAY = "2026-06-15";

/**
 * A call of every method that takes an id, with `bad` in the id's place.
 *
 * @param store The store.
 * @param bad The id.
 * @returns The calls.
 */
export function callsWithId(store: IRulesStore, bad: string): Array<() => Promise<unknown>> {
  return [
    () => store.getPipeline(bad),
    () => store.getValidationRules(bad, "ssn"),
    () => store.getValidationRules("ACME", bad),
    () => store.getCalculationRule(bad, "FICA_SS"),
    () => store.getCalculationRule("ACME", bad),
    () => store.getCalculationRule("ACME", bad, { asOf: "2025-06-13" }),
    () => store.putCalculationRule({ ...calculationVersion(bad, "R", "2025-01-01", null) }, CHANGE),
    () => store.putCalculationRule({ ...calculationVersion("ACME", bad, "2025-01-01", null) }, CHANGE),
    () => store.putValidationRule(validationVersion(bad, "hours", "range", "2025-01-01", null), CHANGE),
    () => store.putValidationRule(validationVersion("ACME", bad, "range", "2025-01-01", null), CHANGE),
    () => store.putValidationRule(validationVersion("ACME", "hours", bad, "2025-01-01", null), CHANGE),
    () => store.removeCalculationRuleVersion(bad, "R", "2025-01-01", { ...CHANGE, expectedRevision: 1 }),
    () => store.removeCalculationRuleVersion("ACME", bad, "2025-01-01", { ...CHANGE, expectedRevision: 1 }),
    () => store.removeValidationRuleVersion(bad, "hours", "r", "2025-01-01", { ...CHANGE, expectedRevision: 1 }),
    () => store.removeValidationRuleVersion("ACME", bad, "r", "2025-01-01", { ...CHANGE, expectedRevision: 1 }),
    () => store.removeValidationRuleVersion("ACME", "hours", bad, "2025-01-01", { ...CHANGE, expectedRevision: 1 }),
    () => store.listCalculationRuleVersions(bad, "R"),
    () => store.listCalculationRuleVersions("ACME", bad),
    () => store.listValidationRuleVersions(bad, "hours"),
    () => store.listValidationRuleVersions("ACME", bad),
    () => store.listRuleChanges(bad),
    () => store.getBatchState(bad),
    () => store.saveBatchState(bad, batchState(bad)),
    () => store.saveProcessingResult(bad, "0100", processingResult(bad, "0100")),
    () => store.saveProcessingResult("B1", bad, processingResult("B1", bad)),
    () => store.getProcessingResults(bad),
    () => store.appendAuditEntry(auditEntry(bad, "e1")),
    () => store.appendAuditEntry(auditEntry("B1", bad)),
    () => store.listAuditEntries(bad),
    () => store.getAgentConfig(bad),
    () => store.getIrsLimits(bad as unknown as number),
    () => store.listBatchesByStatus(bad as never),
  ];
}

/** Who and why, for the changes the suite makes. */
const CHANGE = { actor: "ops@example.com", reason: "contract suite" };

/** One version of a calculation rule whose wage base tells the versions apart. */
function calculationVersion(
  clientId: string,
  ruleId: string,
  effectiveFrom: string,
  effectiveTo: string | null,
  wageBase = "1",
): CalculationRuleInput {
  return {
    clientId,
    ruleId,
    ruleType: "percentage_up_to_wage_base",
    description: `Version from ${effectiveFrom}`,
    parameters: { rate: "0.062", wageBase },
    effectiveFrom,
    effectiveTo,
  };
}

/** One version of a validation rule whose maximum tells the versions apart. */
function validationVersion(
  clientId: string,
  field: string,
  ruleId: string,
  effectiveFrom: string,
  effectiveTo: string | null,
  max = "1",
): ValidationRuleInput {
  return {
    clientId,
    field,
    ruleId,
    ruleType: "range",
    min: "0",
    max,
    severity: "error",
    message: `Version from ${effectiveFrom}`,
    effectiveFrom,
    effectiveTo,
  };
}

/** Text of exactly `bytes` UTF-8 bytes, of two-byte characters (and one "a" for an odd count). */
export function textOfBytes(bytes: number): string {
  return "é".repeat(Math.floor(bytes / 2)) + "a".repeat(bytes % 2);
}

/** `base` with the `fields` it has changed, and `extra` added as they are. */
function changed<T extends object>(base: T, fields: Record<string, unknown>, extra: Record<string, unknown>): T {
  const own = Object.entries(fields).filter(([name]) => Object.hasOwn(base, name));
  return { ...base, ...Object.fromEntries(own), ...extra };
}

/**
 * The three writers that take timestamps and free text, each writing a
 * valid record with the `fields` it has changed (a state's `updatedAt`, a
 * result's `startedAt` and `completedAt`, an entry's `timestamp`, ...) and
 * `extra` fields added.
 */
function writers(
  store: IRulesStore,
  batchId: string,
): Array<[string, (fields: Record<string, unknown>, extra?: Record<string, unknown>) => Promise<unknown>]> {
  return [
    [
      "saveBatchState",
      (fields, extra = {}) => store.saveBatchState(batchId, changed(batchState(batchId), fields, extra)),
    ],
    [
      "saveProcessingResult",
      (fields, extra = {}) =>
        store.saveProcessingResult(batchId, "0100", changed(processingResult(batchId, "0100"), fields, extra)),
    ],
    [
      "appendAuditEntry",
      (fields, extra = {}) => store.appendAuditEntry(changed(auditEntry(batchId, "e1"), fields, extra)),
    ],
  ];
}

/**
 * Registers the rules-store contract suite.
 *
 * @param name The backend's name.
 * @param open Creates a store loaded with the data (called once per suite).
 */
export function rulesStoreContract(
  name: string,
  open: (data: RulesData, options: RulesStoreTestOptions) => Promise<RulesStoreUnderTest>,
): void {
  describe(`IRulesStore contract: ${name}`, () => {
    let subject: RulesStoreUnderTest;
    let store: IRulesStore;
    before(async () => {
      subject = await open(RULES_FIXTURE, { now: () => Date.parse(`${CONTRACT_TODAY}T12:00:00Z`) });
      store = subject.store;
    });
    after(() => subject?.cleanup());

    it("getPipeline() returns every step of the plan sorted by step", async () => {
      const steps = await store.getPipeline("PLAN_A");
      assert.deepEqual(steps.map((s) => s.step), [100, 200, 300]);
      assert.deepEqual(steps[1], {
        planId: "PLAN_A",
        step: 200,
        name: "Step 200",
        agent: "calculation",
        action: "action_200",
        required: true,
        timeoutSeconds: 60,
        retry: { maxAttempts: 3, backoffSeconds: 5 },
        calculationRules: ["FICA_SS"],
      });
    });

    it("getPipeline() rejects an unknown plan with PipelineNotFoundError", async () => {
      await assert.rejects(store.getPipeline("NO_SUCH_PLAN"), (error: unknown) => {
        assert.ok(error instanceof PipelineNotFoundError);
        assert.equal(error.code, "PIPELINE_NOT_FOUND");
        assert.match(error.message, /"NO_SUCH_PLAN"/);
        return true;
      });
    });

    it("getValidationRules() returns the client's own rules when it has them", async () => {
      const rules = await store.getValidationRules("ACME", "hours");
      assert.equal(rules.length, 1);
      assert.equal(rules[0].scope, "CLIENT");
      assert.equal(rules[0].clientId, "ACME");
      assert.equal(rules[0].max, "100");
      assert.equal(rules[0].severity, "warning");
    });

    it("getValidationRules() falls back to GLOBAL, sorted by rule id", async () => {
      const rules = await store.getValidationRules("ACME", "ssn");
      assert.deepEqual(rules.map((r) => [r.ruleId, r.scope, r.clientId]), [
        ["ssn_format", "GLOBAL", "GLOBAL"],
        ["ssn_required", "GLOBAL", "GLOBAL"],
      ]);
      assert.equal(rules[0].pattern, "^\\d{3}-\\d{2}-\\d{4}$");
    });

    it("getValidationRules() returns decimals in canonical form", async () => {
      const [rule] = await store.getValidationRules("OTHER", "hours");
      assert.equal(rule.max, "80");
      assert.equal(rule.min, "0");
    });

    it("getValidationRules() returns [] when neither the client nor GLOBAL has rules", async () => {
      assert.deepEqual(await store.getValidationRules("ACME", "no_such_field"), []);
    });

    it("getCalculationRule() returns the client's override with scope CLIENT", async () => {
      const rule = await store.getCalculationRule("ACME", "OVERTIME");
      assert.deepEqual(rule, {
        clientId: "ACME",
        scope: "CLIENT",
        ruleId: "OVERTIME",
        ruleType: "multiplier",
        description: "ACME overtime, by contract",
        parameters: { multiplier: "2", thresholdHours: "37.5", exact: DECIMAL_38 },
        effectiveFrom: "2024-01-01",
        effectiveTo: null,
        revision: 1,
      });
    });

    it("getCalculationRule() falls back to GLOBAL and says so", async () => {
      const rule = await store.getCalculationRule("ACME", "FICA_SS");
      assert.equal(rule.scope, "GLOBAL");
      assert.equal(rule.clientId, "GLOBAL");
      assert.deepEqual(rule.parameters, { rate: "0.062", wageBase: "184500" });
      assert.equal(rule.effectiveTo, "2026-12-31");
    });

    it("getCalculationRule() rejects a rule neither has with RuleNotFoundError", async () => {
      await assert.rejects(store.getCalculationRule("ACME", "NO_SUCH_RULE"), (error: unknown) => {
        assert.ok(error instanceof RuleNotFoundError);
        assert.equal(error.code, "RULE_NOT_FOUND");
        assert.match(error.message, /"NO_SUCH_RULE".*"ACME"/);
        return true;
      });
    });

    it("getIrsLimits() returns every limit with its exact decimal value", async () => {
      assert.deepEqual(await store.getIrsLimits(2026), {
        year: 2026,
        limits: {
          electiveDeferral: "24500",
          socialSecurityWageBase: "184500",
          tiny: "0.1",
          big: "12345678901234567890",
        },
      });
    });

    it("getIrsLimits() rejects an unknown year with IrsLimitsNotFoundError", async () => {
      await assert.rejects(store.getIrsLimits(1999), IrsLimitsNotFoundError);
    });

    it("getIrsLimits() rejects a year that is not an integer with InvalidInputError", async () => {
      for (const year of [2026.5, Number.NaN, -1, "2026" as unknown as number]) {
        await assert.rejects(store.getIrsLimits(year), InvalidInputError);
      }
    });

    it("getAgentConfig() returns the stored config, or null", async () => {
      assert.deepEqual(await store.getAgentConfig("calculation"), {
        agent: "calculation",
        enabled: true,
        maxConcurrency: 4,
        settings: { precision: 2, mode: "strict" },
      });
      assert.equal(await store.getAgentConfig("intake"), null);
    });

    it("saveBatchState() and getBatchState() round-trip a state", async () => {
      const batchId = uniqueId("batch");
      await store.saveBatchState(batchId, batchState(batchId, { updatedAt: "2026-11-27T11:00:00+01:00" }));
      assert.deepEqual(
        await store.getBatchState(batchId),
        batchState(batchId, { updatedAt: "2026-11-27T10:00:00.000Z" }),
      );
    });

    it("getBatchState() returns null for an unknown batch", async () => {
      assert.equal(await store.getBatchState(uniqueId("none")), null);
    });

    it("saveBatchState() keeps a payload just under the size limit whole", async () => {
      const batchId = uniqueId("batch");
      const state = batchState(batchId, { data: { blob: "é".repeat(MAX_PAYLOAD_BYTES / 2 - 20) } });
      await store.saveBatchState(batchId, state);
      assert.deepEqual(await store.getBatchState(batchId), state);
    });

    it("saveBatchState() without an expected version replaces the state", async () => {
      const batchId = uniqueId("batch");
      await store.saveBatchState(batchId, batchState(batchId, { version: 5 }));
      await store.saveBatchState(batchId, batchState(batchId, { version: 2, status: "failed" }));
      const state = await store.getBatchState(batchId);
      assert.equal(state?.version, 2);
      assert.equal(state?.status, "failed");
    });

    it("saveBatchState() with expected version 0 creates, then advances version by version", async () => {
      const batchId = uniqueId("batch");
      await store.saveBatchState(batchId, batchState(batchId, { version: 1 }), { expectedVersion: 0 });
      await store.saveBatchState(batchId, batchState(batchId, { version: 2, currentStep: 200 }), {
        expectedVersion: 1,
      });
      assert.equal((await store.getBatchState(batchId))?.currentStep, 200);
    });

    it("saveBatchState() with a stale version is a ConflictError and changes nothing", async () => {
      const batchId = uniqueId("batch");
      await store.saveBatchState(batchId, batchState(batchId, { version: 1 }), { expectedVersion: 0 });
      await store.saveBatchState(batchId, batchState(batchId, { version: 2 }), { expectedVersion: 1 });
      const stale = batchState(batchId, { version: 2, status: "failed" });
      await assert.rejects(store.saveBatchState(batchId, stale, { expectedVersion: 1 }), (error: unknown) => {
        assert.ok(error instanceof ConflictError);
        assert.equal(error.code, "CONFLICT");
        return true;
      });
      await assert.rejects(
        store.saveBatchState(batchId, batchState(batchId, { version: 9 }), { expectedVersion: 0 }),
        ConflictError,
      );
      assert.deepEqual(await store.getBatchState(batchId), batchState(batchId, { version: 2 }));
    });

    it("saveBatchState() with an expected version on a missing batch is a ConflictError", async () => {
      const batchId = uniqueId("batch");
      await assert.rejects(
        store.saveBatchState(batchId, batchState(batchId, { version: 4 }), { expectedVersion: 3 }),
        ConflictError,
      );
      assert.equal(await store.getBatchState(batchId), null);
    });

    it("saveBatchState() rejects a version not above the expected one, a bad expected version and another batch's state", async () => {
      const batchId = uniqueId("batch");
      const cases: Array<[unknown, unknown]> = [
        [batchState(batchId, { version: 1 }), { expectedVersion: 1 }],
        [batchState(batchId, { version: 2 }), { expectedVersion: -1 }],
        [batchState(batchId, { version: 2 }), { expectedVersion: 1.5 }],
        [batchState("another-batch"), {}],
      ];
      for (const [state, options] of cases) {
        await assert.rejects(
          store.saveBatchState(batchId, state as never, options as never),
          InvalidInputError,
        );
      }
      assert.equal(await store.getBatchState(batchId), null);
    });

    it("saveBatchState() rejects a malformed state and keeps the stored one", async () => {
      const batchId = uniqueId("batch");
      await store.saveBatchState(batchId, batchState(batchId));
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      const malformed: unknown[] = [
        { ...batchState(batchId), status: "lost" },
        { ...batchState(batchId), version: 0 },
        { ...batchState(batchId), updatedAt: "yesterday" },
        { ...batchState(batchId), data: { big: 10n } },
        { ...batchState(batchId), data: cyclic },
        { ...batchState(batchId), data: { when: new Date() } },
        { ...batchState(batchId), data: { nan: Number.NaN } },
        { ...batchState(batchId), unknownField: 1 },
        { ...batchState(batchId), data: { blob: "é".repeat(MAX_PAYLOAD_BYTES / 2) } },
        (({ clientId: _, ...rest }) => rest)(batchState(batchId)),
        null,
      ];
      for (const state of malformed) {
        await assert.rejects(store.saveBatchState(batchId, state as never), InvalidInputError);
      }
      assert.deepEqual(await store.getBatchState(batchId), batchState(batchId));
    });

    it("listBatchesByStatus() lists the batches with a status, most recent first", async () => {
      const clientId = uniqueId("client");
      const older = uniqueId("batch");
      const newer = uniqueId("batch");
      const other = uniqueId("batch");
      await store.saveBatchState(older, batchState(older, { clientId, status: "awaiting_approval" }));
      await store.saveBatchState(
        newer,
        batchState(newer, { clientId, status: "awaiting_approval", updatedAt: "2026-11-27T12:00:00.000Z" }),
      );
      await store.saveBatchState(other, batchState(other, { clientId, status: "completed" }));
      const listed = (await store.listBatchesByStatus("awaiting_approval")).filter((s) => s.clientId === clientId);
      assert.deepEqual(listed.map((s) => s.batchId), [newer, older]);
      await store.saveBatchState(newer, batchState(newer, { clientId, status: "completed" }));
      const after = (await store.listBatchesByStatus("awaiting_approval")).filter((s) => s.clientId === clientId);
      assert.deepEqual(after.map((s) => s.batchId), [older]);
    });

    it("listBatchesByStatus() rejects an unknown status with InvalidInputError", async () => {
      await assert.rejects(store.listBatchesByStatus("lost" as never), InvalidInputError);
    });

    it("saveProcessingResult() keeps one result per step, in step order, and replaces on re-save", async () => {
      const batchId = uniqueId("batch");
      await store.saveProcessingResult(batchId, "0200", processingResult(batchId, "0200"));
      await store.saveProcessingResult(
        batchId,
        "0100",
        processingResult(batchId, "0100", { expiresAt: 1_900_000_000 }),
      );
      await store.saveProcessingResult(
        batchId,
        "0200",
        processingResult(batchId, "0200", { status: "failed", error: "Timed out" }),
      );
      const results = await store.getProcessingResults(batchId);
      assert.deepEqual(results, [
        processingResult(batchId, "0100", { expiresAt: 1_900_000_000 }),
        processingResult(batchId, "0200", { status: "failed", error: "Timed out" }),
      ]);
      assert.deepEqual(await store.getProcessingResults(uniqueId("none")), []);
    });

    it("saveProcessingResult() rejects a result for another step or batch, or malformed, and stores nothing", async () => {
      const batchId = uniqueId("batch");
      const cases: unknown[] = [
        processingResult(batchId, "0300"),
        processingResult("another-batch", "0100"),
        { ...processingResult(batchId, "0100"), status: "done" },
        { ...processingResult(batchId, "0100"), output: { n: Infinity } },
      ];
      for (const result of cases) {
        await assert.rejects(store.saveProcessingResult(batchId, "0100", result as never), InvalidInputError);
      }
      assert.deepEqual(await store.getProcessingResults(batchId), []);
    });

    it("appendAuditEntry() appends entries that list in timestamp order", async () => {
      const batchId = uniqueId("batch");
      await store.appendAuditEntry(auditEntry(batchId, "e2", { timestamp: "2026-11-27T10:00:02.000Z" }));
      await store.appendAuditEntry(auditEntry(batchId, "e1", { timestamp: "2026-11-27T10:00:01.000Z" }));
      await store.appendAuditEntry(auditEntry(batchId, "e3", { timestamp: "2026-11-27T10:00:02.000Z" }));
      const entries = await store.listAuditEntries(batchId);
      assert.deepEqual(entries.map((e) => e.entryId), ["e1", "e2", "e3"]);
      assert.deepEqual(entries[0], auditEntry(batchId, "e1", { timestamp: "2026-11-27T10:00:01.000Z" }));
      assert.deepEqual(await store.listAuditEntries(uniqueId("none")), []);
    });

    it("appendAuditEntry() with a taken id is a ConflictError and the first entry stays", async () => {
      const batchId = uniqueId("batch");
      const first = auditEntry(batchId, "e1");
      await store.appendAuditEntry(first);
      await assert.rejects(
        store.appendAuditEntry(auditEntry(batchId, "e1", { action: "overwrite", details: {} })),
        (error: unknown) => {
          assert.ok(error instanceof ConflictError);
          assert.match(error.message, /"e1"/);
          return true;
        },
      );
      assert.deepEqual(await store.listAuditEntries(batchId), [first]);
    });

    it("appendAuditEntry() rejects a malformed entry and stores nothing", async () => {
      const batchId = uniqueId("batch");
      const cases: unknown[] = [
        { ...auditEntry(batchId, "e1"), agent: "payroll-bot" },
        { ...auditEntry(batchId, "e1"), timestamp: "2026-11-27" },
        { ...auditEntry(batchId, "e1"), details: { amount: 1n } },
        { ...auditEntry(batchId, "e#1") },
        undefined,
      ];
      for (const entry of cases) {
        await assert.rejects(store.appendAuditEntry(entry as never), InvalidInputError);
      }
      assert.deepEqual(await store.listAuditEntries(batchId), []);
    });

    it("rule reads are deeply frozen: changing one throws and never changes the store", async () => {
      const rule = await store.getCalculationRule("ACME", "FICA_SS");
      assert.throws(() => {
        rule.parameters.rate = "0.5";
      }, TypeError);
      assert.equal((await store.getCalculationRule("ACME", "FICA_SS")).parameters.rate, "0.062");
      const steps = await store.getPipeline("PLAN_A");
      assert.throws(() => {
        steps[0].name = "changed";
      }, TypeError);
      assert.throws(() => steps.pop(), TypeError);
      assert.equal((await store.getPipeline("PLAN_A")).length, 3);
      assert.equal((await store.getPipeline("PLAN_A"))[0].name, "Step 100");
      const validation = await store.getValidationRules("ACME", "ssn");
      assert.ok(Object.isFrozen(validation) && validation.every((entry) => Object.isFrozen(entry)));
      const limits = await store.getIrsLimits(2026);
      assert.ok(Object.isFrozen(limits) && Object.isFrozen(limits.limits));
    });

    it("batch state and audit entries are copies: changing what was read or written never changes the store", async () => {
      const batchId = uniqueId("batch");
      const state = batchState(batchId);
      await store.saveBatchState(batchId, state);
      (state.data.nested as { list: unknown[] }).list.push("added");
      state.status = "failed";
      assert.deepEqual(await store.getBatchState(batchId), batchState(batchId));
      const read = await store.getBatchState(batchId);
      read!.data.employees = 0;
      assert.deepEqual(await store.getBatchState(batchId), batchState(batchId));

      const entry = auditEntry(batchId, "e1");
      await store.appendAuditEntry(entry);
      entry.details.amount = "0";
      assert.deepEqual(await store.listAuditEntries(batchId), [auditEntry(batchId, "e1")]);
    });

    it("every writer refuses, before any write, a timestamp whose UTC form leaves the years 0000 to 9999, at every offset", async () => {
      const batchId = uniqueId("batch");
      // UTC = local time - offset: past the last millisecond with any negative offset, before the first with any positive.
      const outside = [
        ...UTC_OFFSETS.filter((offset) => offset.startsWith("-") && offset !== "-00:00").map((offset) =>
          `9999-12-31T23:59:59.999${offset}`
        ),
        ...UTC_OFFSETS.filter((offset) => offset.startsWith("+") && offset !== "+00:00").map((offset) =>
          `0000-01-01T00:00:00.000${offset}`
        ),
        "9999-12-31T23:00:00.000-01:00",
        "0000-01-01T00:59:59.999+01:00",
        "9999-12-31T23:30:00-01:00",
        "0000-01-01T00:00:00+01:00",
      ];
      for (const [name, write] of writers(store, batchId)) {
        for (const time of outside) {
          const fields = { updatedAt: time, startedAt: time, completedAt: time, timestamp: time };
          await assert.rejects(write(fields), (error: unknown) => {
            assert.ok(error instanceof InvalidInputError, `${name}(${time}) threw ${error}`);
            assert.match(error.message, /in UTC, outside the years 0000 to 9999/);
            return true;
          });
        }
      }
      assert.equal(await store.getBatchState(batchId), null);
      assert.deepEqual(await store.getProcessingResults(batchId), []);
      assert.deepEqual(await store.listAuditEntries(batchId), []);
    });

    it("a timestamp at either end of the years 0000 to 9999 in UTC, at the widest offsets, is stored and read back everywhere", async () => {
      const edges: Array<[string, string]> = [
        ["9999-12-31T22:59:59.999-01:00", "9999-12-31T23:59:59.999Z"],
        ["9999-12-31T23:59:59.999+23:59", "9999-12-31T00:00:59.999Z"],
        ["0000-01-01T01:00:00.000+01:00", "0000-01-01T00:00:00.000Z"],
        ["0000-01-01T00:00:00.000-23:59", "0000-01-01T23:59:00.000Z"],
      ];
      const clientId = uniqueId("client");
      for (const [time, utc] of edges) {
        const batchId = uniqueId("batch");
        for (const [, write] of writers(store, batchId)) {
          await write({ clientId, updatedAt: time, startedAt: time, completedAt: time, timestamp: time });
        }
        assert.equal((await store.getBatchState(batchId))?.updatedAt, utc);
        assert.equal((await store.getProcessingResults(batchId))[0].completedAt, utc);
        assert.equal((await store.listAuditEntries(batchId))[0].timestamp, utc);
      }
      const listed = (await store.listBatchesByStatus("running")).filter((state) => state.clientId === clientId);
      assert.deepEqual(listed.map((state) => state.updatedAt).sort(), edges.map(([, utc]) => utc).sort());
    });

    it("every writer refuses a day that does not exist and a time or offset out of range, before any write", async () => {
      const batchId = uniqueId("batch");
      const impossible = [
        "2024-02-30T10:00:00Z",
        "2023-02-29T10:00:00Z",
        "2024-04-31T10:00:00Z",
        "2024-13-01T10:00:00Z",
        "2024-00-10T10:00:00Z",
        "2024-01-00T10:00:00Z",
        "2100-02-29T10:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T10:60:00Z",
        "2024-01-01T10:00:60Z",
        "2024-01-01T10:00:00+24:00",
        "2024-01-01T10:00:00-12:60",
      ];
      for (const [name, write] of writers(store, batchId)) {
        for (const time of impossible) {
          const fields = { updatedAt: time, startedAt: time, completedAt: time, timestamp: time };
          await assert.rejects(write(fields), InvalidInputError, `${name}(${time})`);
        }
      }
      assert.equal(await store.getBatchState(batchId), null);
      assert.deepEqual(await store.getProcessingResults(batchId), []);
      assert.deepEqual(await store.listAuditEntries(batchId), []);
      const leap = uniqueId("batch");
      await store.saveBatchState(leap, batchState(leap, { updatedAt: "2024-02-29T23:59:59.999+00:00" }));
      assert.equal((await store.getBatchState(leap))?.updatedAt, "2024-02-29T23:59:59.999Z");
    });

    it("every writer refuses a field named like a built-in property (toString, constructor, __proto__, ...)", async () => {
      const batchId = uniqueId("batch");
      for (const [name, write] of writers(store, batchId)) {
        for (const field of PROTOTYPE_NAMES) {
          // A computed key is an own property, even "__proto__".
          await assert.rejects(write({}, { [field]: "x" }), (error: unknown) => {
            assert.ok(error instanceof InvalidInputError, `${name} with ${field} threw ${error}`);
            assert.match(error.message, new RegExp(`\\.${field}: it is not a field of this type`));
            return true;
          });
        }
      }
      assert.equal(await store.getBatchState(batchId), null);
      assert.deepEqual(await store.getProcessingResults(batchId), []);
      assert.deepEqual(await store.listAuditEntries(batchId), []);
    });

    it("appendAuditEntry() and saveProcessingResult() keep free text at its limit beside a payload at its limit", async () => {
      const batchId = uniqueId("batch");
      const payload = { blob: "é".repeat(MAX_PAYLOAD_BYTES / 2 - 20) };
      const entry = auditEntry(batchId, "e1", {
        action: textOfBytes(MAX_LABEL_BYTES),
        actor: textOfBytes(MAX_LABEL_BYTES - 1),
        details: payload,
      });
      await store.appendAuditEntry(entry);
      assert.deepEqual(await store.listAuditEntries(batchId), [entry]);
      const result = processingResult(batchId, "0100", {
        status: "failed",
        error: textOfBytes(MAX_ERROR_BYTES),
        output: payload,
      });
      await store.saveProcessingResult(batchId, "0100", result);
      assert.deepEqual(await store.getProcessingResults(batchId), [result]);
    });

    it("appendAuditEntry() and saveProcessingResult() refuse free text over its limit, naming the field and its size", async () => {
      const batchId = uniqueId("batch");
      const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
        [
          "action, one byte over",
          () => store.appendAuditEntry(auditEntry(batchId, "e1", { action: textOfBytes(MAX_LABEL_BYTES + 1) })),
          new RegExp(
            `audit_entry\\.action: it is ${MAX_LABEL_BYTES + 1} bytes of UTF-8, over the limit of ${MAX_LABEL_BYTES}`,
          ),
        ],
        [
          "action of 300 KiB",
          () => store.appendAuditEntry(auditEntry(batchId, "e1", { action: "a".repeat(300 * 1024) })),
          /audit_entry\.action: it is 307200 bytes/,
        ],
        [
          "actor of 450 KiB",
          () => store.appendAuditEntry(auditEntry(batchId, "e1", { actor: "a".repeat(450 * 1024) })),
          /audit_entry\.actor: it is 460800 bytes/,
        ],
        [
          "error, one byte over",
          () =>
            store.saveProcessingResult(
              batchId,
              "0100",
              processingResult(batchId, "0100", { status: "failed", error: textOfBytes(MAX_ERROR_BYTES + 1) }),
            ),
          new RegExp(`processing_result\\.error: it is ${MAX_ERROR_BYTES + 1} bytes of UTF-8`),
        ],
        [
          "error of 300 KiB",
          () =>
            store.saveProcessingResult(
              batchId,
              "0100",
              processingResult(batchId, "0100", { status: "failed", error: "x".repeat(300 * 1024) }),
            ),
          /processing_result\.error: it is 307200 bytes/,
        ],
      ];
      for (const [label, call, message] of cases) {
        await assert.rejects(call(), (error: unknown) => {
          assert.ok(error instanceof InvalidInputError, `${label}: ${error}`);
          assert.match(error.message, message, label);
          return true;
        });
      }
      assert.deepEqual(await store.listAuditEntries(batchId), []);
      assert.deepEqual(await store.getProcessingResults(batchId), []);
    });

    rulesOverTime(() => subject);

    for (const [label, id] of BAD_IDS) {
      it(`every method rejects an id with ${label} with InvalidInputError`, async () => {
        for (const call of callsWithId(store, id as string)) {
          await assert.rejects(call(), (error: unknown) => {
            assert.ok(error instanceof InvalidInputError, `${call} threw ${error}`);
            assert.equal(error.code, "INVALID_INPUT");
            return true;
          });
        }
      });
    }
  });
}

/**
 * The "rules over time" part of the contract: reads as of a date on every
 * boundary, the change rules, the audit trail of changes, history order and
 * visibility across stores sharing a cache. Every test works on rules of its
 * own (unique ids), in the one store of the suite.
 *
 * @param subjectOf The store under test (set once the suite's `before` ran).
 */
function rulesOverTime(subjectOf: () => RulesStoreUnderTest): void {
  describe("rules over time", () => {
    const store = () => subjectOf().store;
    const wageBase = async (clientId: string, ruleId: string, asOf: string) =>
      (await store().getCalculationRule(clientId, ruleId, { asOf })).parameters.wageBase;
    const notFound = (clientId: string, ruleId: string, asOf: string) =>
      assert.rejects(store().getCalculationRule(clientId, ruleId, { asOf }), (error: unknown) => {
        assert.ok(error instanceof RuleNotFoundError, String(error));
        assert.ok(error.message.includes(`"${ruleId}"`) && error.message.includes(`"${clientId}"`), error.message);
        assert.ok(error.message.includes(asOf), error.message);
        return true;
      });

    it("getCalculationRule() resolves on the first and last day of each version, in a gap, before the first and open-ended", async () => {
      const ruleId = uniqueId("SS");
      const clientId = uniqueId("client");
      await store().putCalculationRule(
        calculationVersion("GLOBAL", ruleId, "2024-01-01", "2024-12-31", "168600"),
        CHANGE,
      );
      await store().putCalculationRule(
        calculationVersion("GLOBAL", ruleId, "2025-01-01", "2025-12-31", "176100"),
        CHANGE,
      );
      await store().putCalculationRule(calculationVersion("GLOBAL", ruleId, "2027-01-01", null, "190000"), CHANGE);
      assert.equal(await wageBase(clientId, ruleId, "2024-01-01"), "168600");
      assert.equal(await wageBase(clientId, ruleId, "2024-12-31"), "168600");
      assert.equal(await wageBase(clientId, ruleId, "2025-01-01"), "176100");
      assert.equal(await wageBase(clientId, ruleId, "2025-12-31"), "176100");
      await notFound(clientId, ruleId, "2026-06-15");
      await notFound(clientId, ruleId, "2023-12-31");
      assert.equal(await wageBase(clientId, ruleId, "2027-01-01"), "190000");
      assert.equal(await wageBase(clientId, ruleId, "9999-12-31"), "190000");
      const rule = await store().getCalculationRule(clientId, ruleId, { asOf: "2025-06-13" });
      assert.deepEqual(
        [rule.scope, rule.clientId, rule.effectiveFrom, rule.effectiveTo, rule.revision],
        ["GLOBAL", "GLOBAL", "2025-01-01", "2025-12-31", 1],
      );
    });

    it("getCalculationRule() falls back to GLOBAL the day before a client's override starts and after it ends", async () => {
      const ruleId = uniqueId("OT");
      const clientId = uniqueId("client");
      await store().putCalculationRule(calculationVersion("GLOBAL", ruleId, "2024-01-01", null, "40"), CHANGE);
      await store().putCalculationRule(
        calculationVersion(clientId, ruleId, "2025-07-01", "2025-12-31", "37.5"),
        CHANGE,
      );
      assert.equal(await wageBase(clientId, ruleId, "2025-06-30"), "40");
      const first = await store().getCalculationRule(clientId, ruleId, { asOf: "2025-07-01" });
      assert.deepEqual([first.scope, first.clientId, first.parameters.wageBase], ["CLIENT", clientId, "37.5"]);
      assert.equal(await wageBase(clientId, ruleId, "2025-12-31"), "37.5");
      assert.equal(await wageBase(clientId, ruleId, "2026-01-01"), "40");
      assert.equal(await wageBase(uniqueId("other"), ruleId, "2025-07-01"), "40");
    });

    it("reads without asOf resolve for today in UTC from the store's clock", async () => {
      const ruleId = uniqueId("TODAY");
      await store().putCalculationRule(calculationVersion("GLOBAL", ruleId, "2026-06-14", "2026-06-14", "14"), CHANGE);
      await store().putCalculationRule(
        calculationVersion("GLOBAL", ruleId, CONTRACT_TODAY, CONTRACT_TODAY, "15"),
        CHANGE,
      );
      await store().putCalculationRule(calculationVersion("GLOBAL", ruleId, "2026-06-16", null, "16"), CHANGE);
      assert.equal((await store().getCalculationRule("ACME", ruleId)).parameters.wageBase, "15");
      const field = uniqueId("field");
      await store().putValidationRule(validationVersion("GLOBAL", field, "r", "2026-06-16", null), CHANGE);
      assert.deepEqual(await store().getValidationRules("ACME", field), []);
      assert.equal((await store().getValidationRules("ACME", field, { asOf: "2026-06-16" })).length, 1);
    });

    it("asOf must be a calendar date YYYY-MM-DD: an impossible or malformed one is an InvalidInputError, never rolled over", async () => {
      const bad: unknown[] = [
        "2025-02-29",
        "2024-13-01",
        "2024-04-31",
        "2024-6-1",
        "20240601",
        "2024-06-01T00:00:00Z",
        "",
        null,
        20240601,
      ];
      for (const asOf of bad) {
        for (
          const read of [
            () => store().getCalculationRule("ACME", "OVERTIME", { asOf: asOf as string }),
            () => store().getValidationRules("ACME", "hours", { asOf: asOf as string }),
          ]
        ) {
          await assert.rejects(read(), (error: unknown) => {
            assert.ok(error instanceof InvalidInputError, `${JSON.stringify(asOf)}: ${error}`);
            assert.match(error.message, /as-of date/);
            return true;
          });
        }
      }
      assert.equal((await store().getCalculationRule("ACME", "OVERTIME", { asOf: "2024-02-29" })).scope, "CLIENT");
    });

    it("getValidationRules(): the client's rules in effect replace GLOBAL's; none in effect on either side is []", async () => {
      const field = uniqueId("field");
      const clientId = uniqueId("client");
      await store().putValidationRule(validationVersion("GLOBAL", field, "a", "2024-01-01", null, "10"), CHANGE);
      await store().putValidationRule(
        validationVersion("GLOBAL", field, "b", "2024-01-01", "2024-12-31", "20"),
        CHANGE,
      );
      await store().putValidationRule(validationVersion(clientId, field, "a", "2025-07-01", null, "30"), CHANGE);
      const asOf = async (day: string) =>
        (await store().getValidationRules(clientId, field, { asOf: day })).map((r) => [r.ruleId, r.scope, r.max]);
      assert.deepEqual(await asOf("2023-12-31"), []);
      assert.deepEqual(await asOf("2024-12-31"), [["a", "GLOBAL", "10"], ["b", "GLOBAL", "20"]]);
      assert.deepEqual(await asOf("2025-06-30"), [["a", "GLOBAL", "10"]]);
      assert.deepEqual(await asOf("2025-07-01"), [["a", "CLIENT", "30"]]);
      const [rule] = await store().getValidationRules(clientId, field, { asOf: "2025-07-01" });
      assert.deepEqual([rule.effectiveFrom, rule.effectiveTo, rule.revision], ["2025-07-01", null, 1]);
    });

    it("validation rules stored without dates apply from 0001-01-01, open-ended, at revision 1", async () => {
      const [rule] = await store().getValidationRules("ACME", "hours", { asOf: "0001-01-01" });
      assert.deepEqual([rule.effectiveFrom, rule.effectiveTo, rule.revision, rule.scope], [
        "0001-01-01",
        null,
        1,
        "CLIENT",
      ]);
    });

    it("a new effectiveFrom closes an open-ended earlier version on the day before, in the same change", async () => {
      const ruleId = uniqueId("CLOSE");
      await store().putCalculationRule(calculationVersion("GLOBAL", ruleId, "2023-01-01", null, "1"), CHANGE);
      const added = await store().putCalculationRule(
        calculationVersion("GLOBAL", ruleId, "2024-03-01", null, "2"),
        CHANGE,
      );
      assert.deepEqual([added.effectiveFrom, added.effectiveTo, added.revision, added.scope], [
        "2024-03-01",
        null,
        1,
        "GLOBAL",
      ]);
      const versions = await store().listCalculationRuleVersions("GLOBAL", ruleId);
      assert.deepEqual(versions.map((v) => [v.effectiveFrom, v.effectiveTo, v.revision]), [
        ["2023-01-01", "2024-02-29", 2],
        ["2024-03-01", null, 1],
      ]);
      assert.equal(await wageBase("ACME", ruleId, "2024-02-29"), "1");
      assert.equal(await wageBase("ACME", ruleId, "2024-03-01"), "2");
      const changes = (await store().listRuleChanges("GLOBAL")).filter((c) => c.ruleId === ruleId);
      assert.equal(changes.length, 2);
      assert.deepEqual(
        [
          changes[1].closed?.before?.effectiveTo,
          changes[1].closed?.after.effectiveTo,
          changes[1].closed?.after.revision,
        ],
        [null, "2024-02-29", 2],
      );
      assert.equal(changes[0].closed, null);
    });

    it("the same goes per rule id within a field for validation rules", async () => {
      const field = uniqueId("field");
      await store().putValidationRule(validationVersion("GLOBAL", field, "a", "2024-01-01", null, "1"), CHANGE);
      await store().putValidationRule(validationVersion("GLOBAL", field, "b", "2024-06-01", null, "5"), CHANGE);
      await store().putValidationRule(validationVersion("GLOBAL", field, "a", "2025-01-01", null, "2"), CHANGE);
      const versions = await store().listValidationRuleVersions("GLOBAL", field);
      assert.deepEqual(versions.map((v) => [v.ruleId, v.effectiveFrom, v.effectiveTo, v.revision]), [
        ["a", "2024-01-01", "2024-12-31", 2],
        ["a", "2025-01-01", null, 1],
        ["b", "2024-06-01", null, 1],
      ]);
    });

    it("any other overlap is a ConflictError naming both ranges, and nothing changes", async () => {
      const ruleId = uniqueId("OVERLAP");
      const clientId = uniqueId("client");
      await store().putCalculationRule(calculationVersion(clientId, ruleId, "2024-01-01", "2024-12-31", "1"), CHANGE);
      await store().putCalculationRule(calculationVersion(clientId, ruleId, "2026-01-01", null, "3"), CHANGE);
      const before = await store().listCalculationRuleVersions(clientId, ruleId);
      const cases: Array<[string, string | null, string]> = [
        ["2024-06-01", "2025-05-31", "2024-01-01..2024-12-31"],
        ["2023-01-01", null, "2024-01-01..2024-12-31"],
        ["2025-01-01", "2026-01-01", "2026-01-01..open"],
        ["2023-06-01", "2024-01-01", "2024-01-01..2024-12-31"],
      ];
      for (const [from, to, stored] of cases) {
        await assert.rejects(
          store().putCalculationRule(calculationVersion(clientId, ruleId, from, to, "9"), CHANGE),
          (error: unknown) => {
            assert.ok(error instanceof ConflictError, `${from}..${to}: ${error}`);
            assert.ok(error.message.includes(`${from}..${to ?? "open"}`), error.message);
            assert.ok(error.message.includes(stored), error.message);
            return true;
          },
        );
      }
      assert.deepEqual(await store().listCalculationRuleVersions(clientId, ruleId), before);
      assert.equal((await store().listRuleChanges(clientId)).length, 2);
      // A version in the gap fits.
      await store().putCalculationRule(calculationVersion(clientId, ruleId, "2025-01-01", "2025-12-31", "2"), CHANGE);
      assert.equal(await wageBase(clientId, ruleId, "2025-12-31"), "2");
    });

    it("the same effectiveFrom corrects a version with the right expectedRevision; without it or a stale one it is a ConflictError", async () => {
      const ruleId = uniqueId("FIX");
      const clientId = uniqueId("client");
      const v1 = await store().putCalculationRule(calculationVersion(clientId, ruleId, "2025-01-01", null, "100"), {
        ...CHANGE,
        expectedRevision: 0,
      });
      assert.equal(v1.revision, 1);
      const conflicts: Array<[number | undefined, RegExp]> = [
        [undefined, /revision 1.*expectedRevision 1/],
        [0, /expected revision 0.*stored revision is 1/],
        [2, /expected revision 2.*stored revision is 1/],
      ];
      for (const [expectedRevision, message] of conflicts) {
        await assert.rejects(
          store().putCalculationRule(calculationVersion(clientId, ruleId, "2025-01-01", null, "999"), {
            ...CHANGE,
            expectedRevision,
          }),
          (error: unknown) => {
            assert.ok(error instanceof ConflictError, String(error));
            assert.match(error.message, message);
            return true;
          },
        );
      }
      assert.equal(await wageBase(clientId, ruleId, "2025-06-01"), "100");
      const v2 = await store().putCalculationRule(calculationVersion(clientId, ruleId, "2025-01-01", null, "101"), {
        ...CHANGE,
        expectedRevision: 1,
      });
      assert.equal(v2.revision, 2);
      assert.equal(await wageBase(clientId, ruleId, "2025-06-01"), "101");
      await assert.rejects(
        store().putCalculationRule(calculationVersion(clientId, ruleId, "2025-01-01", null, "102"), {
          ...CHANGE,
          expectedRevision: 1,
        }),
        ConflictError,
      );
      await assert.rejects(
        store().putCalculationRule(calculationVersion(clientId, ruleId, "2026-01-01", null, "200"), {
          ...CHANGE,
          expectedRevision: 3,
        }),
        /no version from 2026-01-01 is stored/,
      );
      // A correction may not grow into another version either.
      await store().putCalculationRule(
        calculationVersion(clientId, ruleId, "2025-01-01", "2025-12-31", "101"),
        { ...CHANGE, expectedRevision: 2 },
      );
      await store().putCalculationRule(calculationVersion(clientId, ruleId, "2026-01-01", null, "200"), CHANGE);
      await assert.rejects(
        store().putCalculationRule(calculationVersion(clientId, ruleId, "2025-01-01", null, "101"), {
          ...CHANGE,
          expectedRevision: 3,
        }),
        /2025-01-01\.\.open overlaps the stored version 2026-01-01\.\.open/,
      );
      assert.deepEqual(
        (await store().listCalculationRuleVersions(clientId, ruleId)).map((v) => [v.effectiveTo, v.revision]),
        [["2025-12-31", 3], [null, 1]],
      );
    });

    it("a malformed change is an InvalidInputError and nothing is stored", async () => {
      const ruleId = uniqueId("BAD");
      const clientId = uniqueId("client");
      const good = calculationVersion(clientId, ruleId, "2025-01-01", null);
      const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
        [
          "ends before it starts",
          () => store().putCalculationRule({ ...good, effectiveTo: "2024-12-31" }, CHANGE),
          /ends on 2024-12-31, before it starts on 2025-01-01/,
        ],
        [
          "an impossible day",
          () => store().putCalculationRule({ ...good, effectiveFrom: "2025-02-29" }, CHANGE),
          /effectiveFrom: the day "2025-02-29" does not exist/,
        ],
        ["no actor", () => store().putCalculationRule(good, { ...CHANGE, actor: "" }), /actor/],
        [
          "an actor over its limit",
          () => store().putCalculationRule(good, { ...CHANGE, actor: textOfBytes(MAX_LABEL_BYTES + 1) }),
          /actor: it is 4097 bytes/,
        ],
        ["no reason", () => store().putCalculationRule(good, { actor: "ops" } as never), /reason: it is missing/],
        [
          "a reason over its limit",
          () => store().putCalculationRule(good, { ...CHANGE, reason: textOfBytes(MAX_DESCRIPTION_BYTES + 1) }),
          /reason: it is 16385 bytes/,
        ],
        [
          "a negative expected revision",
          () => store().putCalculationRule(good, { ...CHANGE, expectedRevision: -1 }),
          /expectedRevision/,
        ],
        [
          "a fractional expected revision",
          () => store().putCalculationRule(good, { ...CHANGE, expectedRevision: 1.5 }),
          /expectedRevision/,
        ],
        ["no options", () => store().putCalculationRule(good, undefined as never), /rule_change_options/],
        [
          "an unknown field",
          () => store().putCalculationRule({ ...good, revision: 1 } as never, CHANGE),
          /revision: it is not a field/,
        ],
        [
          "a validation rule ending before it starts",
          () => store().putValidationRule(validationVersion(clientId, "f", "r", "2025-01-01", "2024-01-01"), CHANGE),
          /before it starts/,
        ],
      ];
      for (const [label, call, message] of cases) {
        await assert.rejects(call(), (error: unknown) => {
          assert.ok(error instanceof InvalidInputError, `${label}: ${error}`);
          assert.match(error.message, message, label);
          return true;
        });
      }
      assert.deepEqual(await store().listCalculationRuleVersions(clientId, ruleId), []);
      assert.deepEqual(await store().listRuleChanges(clientId), []);
    });

    it("every change has one audit record: actor, reason, when, the version before and after; listed in order per owner", async () => {
      const ruleId = uniqueId("AUDIT");
      const clientId = uniqueId("client");
      const field = uniqueId("field");
      await store().putCalculationRule(calculationVersion(clientId, ruleId, "2024-01-01", null, "1"), {
        actor: "alice",
        reason: "first",
      });
      await store().putCalculationRule(calculationVersion(clientId, ruleId, "2025-01-01", null, "2"), {
        actor: "bob",
        reason: "second",
      });
      await store().putCalculationRule(calculationVersion(clientId, ruleId, "2025-01-01", null, "3"), {
        actor: "carol",
        reason: "third",
        expectedRevision: 1,
      });
      await store().putValidationRule(validationVersion(clientId, field, "r", "2024-01-01", null), {
        actor: "dave",
        reason: "fourth",
      });
      const changes = await store().listRuleChanges(clientId);
      assert.deepEqual(changes.map((c) => [c.kind, c.actor, c.reason, c.clientId]), [
        ["calculation", "alice", "first", clientId],
        ["calculation", "bob", "second", clientId],
        ["calculation", "carol", "third", clientId],
        ["validation", "dave", "fourth", clientId],
      ]);
      assert.ok(changes.every((c, i) => i === 0 || changes[i - 1].at <= c.at), "in time order");
      assert.ok(changes.every((c) => !Number.isNaN(Date.parse(c.at)) && c.at.endsWith("Z")));
      assert.equal(new Set(changes.map((c) => c.changeId)).size, 4);
      const [first, second, third, fourth] = changes;
      assert.ok(first.kind === "calculation" && third.kind === "calculation");
      assert.equal(first.before, null);
      assert.deepEqual([first.after!.parameters, first.after!.revision], [{ rate: "0.062", wageBase: "1" }, 1]);
      assert.deepEqual([second.closed?.after.effectiveTo, second.after!.effectiveFrom], ["2024-12-31", "2025-01-01"]);
      assert.deepEqual(
        [
          third.before?.parameters.wageBase,
          third.before?.revision,
          third.after!.parameters.wageBase,
          third.after!.revision,
        ],
        ["2", 1, "3", 2],
      );
      assert.ok(fourth.kind === "validation" && fourth.field === field && fourth.after!.ruleId === "r");
      // GLOBAL's changes are GLOBAL's, not every client's.
      const globalRule = uniqueId("G");
      await store().putCalculationRule(calculationVersion("GLOBAL", globalRule, "2024-01-01", null), CHANGE);
      assert.equal((await store().listRuleChanges(clientId)).length, 4);
      assert.equal((await store().listRuleChanges("GLOBAL")).filter((c) => c.ruleId === globalRule).length, 1);
      assert.deepEqual(await store().listRuleChanges(uniqueId("nobody")), []);
    });

    it("a change whose audit record cannot be written leaves neither the change nor the record", async (t) => {
      const subject = subjectOf();
      if (subject.failNextRuleChangeAudit === undefined) return t.skip("the backend cannot fail an audit record");
      const ruleId = uniqueId("ATOMIC");
      const clientId = uniqueId("client");
      await store().putCalculationRule(calculationVersion(clientId, ruleId, "2024-01-01", null, "1"), CHANGE);
      const versions = await store().listCalculationRuleVersions(clientId, ruleId);
      for (
        const [label, change] of [
          [
            "an added version",
            () => store().putCalculationRule(calculationVersion(clientId, ruleId, "2025-01-01", null, "2"), CHANGE),
          ],
          [
            "a correction",
            () =>
              store().putCalculationRule(calculationVersion(clientId, ruleId, "2024-01-01", null, "3"), {
                ...CHANGE,
                expectedRevision: 1,
              }),
          ],
        ] as const
      ) {
        subject.failNextRuleChangeAudit();
        await assert.rejects(
          change(),
          (error: unknown) => error instanceof Error && !(error instanceof ConflictError),
          label,
        );
        assert.deepEqual(await store().listCalculationRuleVersions(clientId, ruleId), versions, label);
        assert.equal((await store().listRuleChanges(clientId)).length, 1, label);
        assert.equal(await wageBase(clientId, ruleId, "2025-06-01"), "1", label);
      }
      await store().putCalculationRule(calculationVersion(clientId, ruleId, "2025-01-01", null, "2"), CHANGE);
      assert.equal((await store().listRuleChanges(clientId)).length, 2);
    });

    it("listCalculationRuleVersions() lists every version, closed ones included, in effectiveFrom order; [] for none", async () => {
      const ruleId = uniqueId("HISTORY");
      for (
        const [from, to] of [["2026-01-01", "2026-12-31"], ["2024-01-01", "2024-12-31"], ["2025-01-01", "2025-12-31"]]
      ) {
        await store().putCalculationRule(calculationVersion("GLOBAL", ruleId, from, to), CHANGE);
      }
      const versions = await store().listCalculationRuleVersions("GLOBAL", ruleId);
      assert.deepEqual(versions.map((v) => v.effectiveFrom), ["2024-01-01", "2025-01-01", "2026-01-01"]);
      assert.ok(versions.every((v) => v.scope === "GLOBAL" && v.clientId === "GLOBAL"));
      // A client's history is its own: no GLOBAL fallback.
      assert.deepEqual(await store().listCalculationRuleVersions("ACME", ruleId), []);
      assert.deepEqual(await store().listValidationRuleVersions("ACME", uniqueId("field")), []);
    });

    it("once a change returns, the next read sees it: in this store, and in another sharing its cache, for every client falling back to GLOBAL", async () => {
      const peer = await subjectOf().peer?.() ?? store();
      const ruleId = uniqueId("VISIBLE");
      const field = uniqueId("field");
      const [a, b] = [uniqueId("a"), uniqueId("b")];
      await store().putCalculationRule(calculationVersion("GLOBAL", ruleId, "2024-01-01", null, "1"), CHANGE);
      await store().putValidationRule(validationVersion("GLOBAL", field, "r", "2024-01-01", null, "1"), CHANGE);
      const seen = async (reader: IRulesStore, clientId: string) => [
        (await reader.getCalculationRule(clientId, ruleId, { asOf: "2025-06-01" })).parameters.wageBase,
        (await reader.getValidationRules(clientId, field, { asOf: "2025-06-01" })).map((r) => `${r.scope}:${r.max}`)
          .join(),
      ];
      for (const reader of [store(), peer]) {
        for (const clientId of [a, b]) assert.deepEqual(await seen(reader, clientId), ["1", "GLOBAL:1"]);
      }
      // A GLOBAL correction reaches every client through one change.
      await store().putCalculationRule(calculationVersion("GLOBAL", ruleId, "2024-01-01", null, "2"), {
        ...CHANGE,
        expectedRevision: 1,
      });
      await store().putValidationRule(validationVersion("GLOBAL", field, "r", "2024-01-01", null, "2"), {
        ...CHANGE,
        expectedRevision: 1,
      });
      for (const reader of [store(), peer]) {
        for (const clientId of [a, b]) assert.deepEqual(await seen(reader, clientId), ["2", "GLOBAL:2"]);
      }
      // A client's new override replaces the cached emptiness of its own entry.
      await store().putCalculationRule(calculationVersion(a, ruleId, "2025-01-01", null, "3"), CHANGE);
      await store().putValidationRule(validationVersion(a, field, "r", "2025-01-01", null, "3"), CHANGE);
      for (const reader of [store(), peer]) {
        assert.deepEqual(await seen(reader, a), ["3", "CLIENT:3"]);
        assert.deepEqual(await seen(reader, b), ["2", "GLOBAL:2"]);
      }
      // And a change made by the other store is seen here.
      await peer.putCalculationRule(calculationVersion(a, ruleId, "2025-01-01", null, "4"), {
        ...CHANGE,
        expectedRevision: 1,
      });
      assert.deepEqual(await seen(store(), a), ["4", "CLIENT:3"]);
    });

    it("removeCalculationRuleVersion() with the stored revision removes the version: gone from the history, its days fall back to GLOBAL, then to no rule; one audit record with after null", async () => {
      const ruleId = uniqueId("REMOVE");
      const clientId = uniqueId("client");
      await store().putCalculationRule(calculationVersion("GLOBAL", ruleId, "2024-01-01", null, "1"), CHANGE);
      await store().putCalculationRule(calculationVersion(clientId, ruleId, "2024-01-01", "2024-12-31", "2"), CHANGE);
      await store().putCalculationRule(calculationVersion(clientId, ruleId, "2025-01-01", null, "3"), CHANGE);
      const removal = { actor: "pruner@example.com", reason: "no longer in config", expectedRevision: 1 };
      const removed = await store().removeCalculationRuleVersion(clientId, ruleId, "2025-01-01", removal);
      assert.deepEqual(
        [removed.scope, removed.clientId, removed.effectiveFrom, removed.revision, removed.parameters.wageBase],
        ["CLIENT", clientId, "2025-01-01", 1, "3"],
      );
      assert.deepEqual((await store().listCalculationRuleVersions(clientId, ruleId)).map((v) => v.effectiveFrom), [
        "2024-01-01",
      ]);
      assert.equal(await wageBase(clientId, ruleId, "2024-06-01"), "2");
      assert.equal(
        await wageBase(clientId, ruleId, "2025-06-01"),
        "1",
        "the removed version's days fall back to GLOBAL",
      );
      // The last version: the client reads as one that never had any.
      await store().removeCalculationRuleVersion(clientId, ruleId, "2024-01-01", removal);
      assert.deepEqual(await store().listCalculationRuleVersions(clientId, ruleId), []);
      assert.equal((await store().getCalculationRule(clientId, ruleId, { asOf: "2024-06-01" })).scope, "GLOBAL");
      await store().removeCalculationRuleVersion("GLOBAL", ruleId, "2024-01-01", removal);
      await notFound(clientId, ruleId, "2024-06-01");
      const changes = await store().listRuleChanges(clientId);
      assert.equal(changes.length, 4);
      const last = changes[3];
      assert.ok(last.kind === "calculation");
      assert.deepEqual(
        [
          last.actor,
          last.reason,
          last.ruleId,
          last.before?.effectiveFrom,
          last.before?.revision,
          last.after,
          last.closed,
        ],
        ["pruner@example.com", "no longer in config", ruleId, "2024-01-01", 1, null, null],
      );
      assert.equal(
        (await store().listRuleChanges("GLOBAL")).filter((c) => c.ruleId === ruleId && c.after === null).length,
        1,
      );
      // A removed version can be added again, as new.
      const again = await store().putCalculationRule(
        calculationVersion(clientId, ruleId, "2025-01-01", null, "5"),
        CHANGE,
      );
      assert.equal(again.revision, 1);
    });

    it("removeValidationRuleVersion() removes one rule id's version; the field's days fall back to GLOBAL's rules", async () => {
      const field = uniqueId("field");
      const clientId = uniqueId("client");
      await store().putValidationRule(validationVersion("GLOBAL", field, "r", "2024-01-01", null, "1"), CHANGE);
      await store().putValidationRule(validationVersion(clientId, field, "r", "2025-01-01", null, "2"), CHANGE);
      await store().putValidationRule(validationVersion(clientId, field, "s", "2026-01-01", null, "3"), CHANGE);
      const rules = async (asOf: string) =>
        (await store().getValidationRules(clientId, field, { asOf })).map((r) => `${r.scope}:${r.ruleId}:${r.max}`);
      assert.deepEqual(await rules("2025-06-01"), ["CLIENT:r:2"]);
      const removed = await store().removeValidationRuleVersion(clientId, field, "r", "2025-01-01", {
        ...CHANGE,
        expectedRevision: 1,
      });
      assert.deepEqual([removed.scope, removed.ruleId, removed.field, removed.max], ["CLIENT", "r", field, "2"]);
      assert.deepEqual(await rules("2025-06-01"), ["GLOBAL:r:1"]);
      assert.deepEqual(await rules("2026-06-01"), ["CLIENT:s:3"]);
      assert.deepEqual((await store().listValidationRuleVersions(clientId, field)).map((v) => v.ruleId), ["s"]);
      const last = (await store().listRuleChanges(clientId)).at(-1)!;
      assert.ok(last.kind === "validation");
      assert.deepEqual([last.field, last.ruleId, last.before?.effectiveFrom, last.after], [
        field,
        "r",
        "2025-01-01",
        null,
      ]);
    });

    it("a removal without the stored revision, or with a stale one, is a ConflictError and nothing changes", async () => {
      const ruleId = uniqueId("REMOVE");
      const field = uniqueId("field");
      const clientId = uniqueId("client");
      await store().putCalculationRule(calculationVersion(clientId, ruleId, "2025-01-01", null, "1"), CHANGE);
      await store().putCalculationRule(calculationVersion(clientId, ruleId, "2025-01-01", null, "2"), {
        ...CHANGE,
        expectedRevision: 1,
      });
      await store().putValidationRule(validationVersion(clientId, field, "r", "2025-01-01", null, "1"), CHANGE);
      const versions = await store().listCalculationRuleVersions(clientId, ruleId);
      const fieldVersions = await store().listValidationRuleVersions(clientId, field);
      for (
        const [label, remove] of [
          ["no revision", () => store().removeCalculationRuleVersion(clientId, ruleId, "2025-01-01", CHANGE)],
          [
            "a stale revision",
            () =>
              store().removeCalculationRuleVersion(clientId, ruleId, "2025-01-01", { ...CHANGE, expectedRevision: 1 }),
          ],
          [
            "no revision, validation",
            () => store().removeValidationRuleVersion(clientId, field, "r", "2025-01-01", CHANGE),
          ],
          [
            "a stale revision, validation",
            () =>
              store().removeValidationRuleVersion(clientId, field, "r", "2025-01-01", {
                ...CHANGE,
                expectedRevision: 2,
              }),
          ],
        ] as const
      ) {
        await assert.rejects(remove(), (error: unknown) => {
          assert.ok(error instanceof ConflictError, `${label}: ${error}`);
          assert.match(error.message, /stored revision is [12]/, label);
          return true;
        });
      }
      assert.deepEqual(await store().listCalculationRuleVersions(clientId, ruleId), versions);
      assert.deepEqual(await store().listValidationRuleVersions(clientId, field), fieldVersions);
      assert.equal(await wageBase(clientId, ruleId, "2025-06-01"), "2");
      assert.equal((await store().listRuleChanges(clientId)).length, 3);
    });

    it("removing a version that is not stored is a RuleNotFoundError naming client, rule and day, and records nothing", async () => {
      const ruleId = uniqueId("REMOVE");
      const field = uniqueId("field");
      const clientId = uniqueId("client");
      await store().putCalculationRule(calculationVersion(clientId, ruleId, "2025-01-01", null), CHANGE);
      const options = { ...CHANGE, expectedRevision: 1 };
      for (
        const [label, remove, rule] of [
          ["another day", () => store().removeCalculationRuleVersion(clientId, ruleId, "2025-01-02", options), ruleId],
          [
            "no item",
            () => store().removeCalculationRuleVersion(clientId, `${ruleId}X`, "2025-01-02", options),
            `${ruleId}X`,
          ],
          [
            "no validation rule",
            () => store().removeValidationRuleVersion(clientId, field, "r", "2025-01-02", options),
            "r",
          ],
        ] as const
      ) {
        await assert.rejects(remove(), (error: unknown) => {
          assert.ok(error instanceof RuleNotFoundError, `${label}: ${error}`);
          for (const part of [`"${clientId}"`, `"${rule}"`, "2025-01-02"]) {
            assert.ok(error.message.includes(part), error.message);
          }
          return true;
        });
      }
      assert.equal((await store().listRuleChanges(clientId)).length, 1);
      assert.equal((await store().listCalculationRuleVersions(clientId, ruleId)).length, 1);
    });

    it("once a removal returns, the next read sees it: in this store, and in another sharing its cache", async () => {
      const peer = await subjectOf().peer?.() ?? store();
      const ruleId = uniqueId("UNSEEN");
      const field = uniqueId("field");
      const clientId = uniqueId("client");
      await store().putCalculationRule(calculationVersion("GLOBAL", ruleId, "2024-01-01", null, "1"), CHANGE);
      await store().putValidationRule(validationVersion("GLOBAL", field, "r", "2024-01-01", null, "1"), CHANGE);
      await store().putCalculationRule(calculationVersion(clientId, ruleId, "2024-01-01", null, "2"), CHANGE);
      await store().putValidationRule(validationVersion(clientId, field, "r", "2024-01-01", null, "2"), CHANGE);
      const seen = async (reader: IRulesStore) => [
        (await reader.getCalculationRule(clientId, ruleId, { asOf: "2025-06-01" })).parameters.wageBase,
        (await reader.getValidationRules(clientId, field, { asOf: "2025-06-01" })).map((r) => `${r.scope}:${r.max}`)
          .join(),
      ];
      // Both readers have the client's override cached.
      for (const reader of [store(), peer]) assert.deepEqual(await seen(reader), ["2", "CLIENT:2"]);
      const options = { ...CHANGE, expectedRevision: 1 };
      await store().removeCalculationRuleVersion(clientId, ruleId, "2024-01-01", options);
      await store().removeValidationRuleVersion(clientId, field, "r", "2024-01-01", options);
      for (const reader of [store(), peer]) assert.deepEqual(await seen(reader), ["1", "GLOBAL:1"]);
      // GLOBAL's removal by the other store reaches this one's client, left with no own versions.
      await peer.removeCalculationRuleVersion("GLOBAL", ruleId, "2024-01-01", options);
      await peer.removeValidationRuleVersion("GLOBAL", field, "r", "2024-01-01", options);
      await notFound(clientId, ruleId, "2025-06-01");
      assert.deepEqual(await store().getValidationRules(clientId, field, { asOf: "2025-06-01" }), []);
    });
  });
}
