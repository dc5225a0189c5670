// The IRulesStore contract: every backend runs this suite unchanged.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  ConflictError,
  InvalidInputError,
  IrsLimitsNotFoundError,
  type IRulesStore,
  MAX_ERROR_BYTES,
  MAX_LABEL_BYTES,
  MAX_PAYLOAD_BYTES,
  PipelineNotFoundError,
  RuleNotFoundError,
  type RulesData,
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
}

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
export function rulesStoreContract(name: string, open: (data: RulesData) => Promise<RulesStoreUnderTest>): void {
  describe(`IRulesStore contract: ${name}`, () => {
    let subject: RulesStoreUnderTest;
    let store: IRulesStore;
    before(async () => {
      subject = await open(RULES_FIXTURE);
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
