// The memory backends are the reference: they run every contract suite.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  InvalidInputError,
  MemoryCacheBackend,
  MemoryFileStore,
  MemoryRulesStore,
  type RuleChange,
  RulesStoreError,
} from "../../mod.ts";
import { cacheContract } from "../contract/cache_contract.ts";
import { fileStoreContract } from "../contract/file_store_contract.ts";
import { batchState, RULES_FIXTURE } from "../contract/fixtures.ts";
import { rulesStoreContract } from "../contract/rules_store_contract.ts";

/** The reference store, with a rule change's audit record made to fail on demand. */
class AuditFailingRulesStore extends MemoryRulesStore {
  failNext = false;

  protected override recordRuleChange(change: RuleChange): void {
    if (this.failNext) {
      this.failNext = false;
      throw new RulesStoreError("Failed to record the rule change: injected failure");
    }
    super.recordRuleChange(change);
  }
}

rulesStoreContract("MemoryRulesStore", (data, options) => {
  const store = new AuditFailingRulesStore(data, options);
  return Promise.resolve({
    store,
    cleanup: async () => {},
    // No cache: every reader of the process reads the store itself.
    peer: () => Promise.resolve(store),
    failNextRuleChangeAudit: () => {
      store.failNext = true;
    },
  });
});

cacheContract("MemoryCacheBackend", () => {
  let now = 1_000_000;
  const cache = new MemoryCacheBackend({ now: () => now });
  return Promise.resolve({
    cache,
    elapse: (milliseconds: number) => {
      now += milliseconds;
      return Promise.resolve();
    },
    cleanup: async () => {},
  });
});

fileStoreContract(
  "MemoryFileStore",
  () =>
    Promise.resolve({
      files: new MemoryFileStore({ pageSize: 7 }),
      withPageSize: (pageSize) => new MemoryFileStore({ pageSize }),
      withRetention: () => Promise.resolve(new MemoryFileStore()),
      cleanup: async () => {},
    }),
);

describe("MemoryRulesStore", () => {
  it("new MemoryRulesStore() rejects data with a repeated key, naming both entries", () => {
    const step = RULES_FIXTURE.pipelineSteps![0];
    assert.throws(() => new MemoryRulesStore({ pipelineSteps: [step, { ...step }] }), (error: unknown) => {
      assert.ok(error instanceof InvalidInputError);
      assert.match(error.message, /pipelineSteps\[1\]: it repeats the key of pipelineSteps\[0\]/);
      return true;
    });
  });

  it("new MemoryRulesStore() lists every problem of malformed data at once", () => {
    const rule = RULES_FIXTURE.calculationRules![0];
    assert.throws(
      () =>
        new MemoryRulesStore({
          calculationRules: [{ ...rule, parameters: { rate: "1.2" } }, {
            ...rule,
            ruleId: "X",
            parameters: { cap: 0.1 as never },
          }],
          irsLimits: [{ year: 2026, limits: { big: "1".repeat(39) } }],
        }),
      (error: unknown) => {
        assert.ok(error instanceof InvalidInputError);
        assert.match(error.message, /calculationRules\[0\]\.parameters\.rate: the rate "1\.2" is outside \[0, 1\]/);
        assert.match(error.message, /calculationRules\[1\]\.parameters\.cap: it is a number, not a decimal string/);
        assert.match(error.message, /irsLimits\[0\]\.limits\.big: it has 39 significant digits, over the limit of 38/);
        return true;
      },
    );
  });

  it("saveBatchState() takes null options as no options, as the DynamoDB store does", async () => {
    const store = new MemoryRulesStore();
    const state = batchState("B1");
    await store.saveBatchState("B1", state, null as never);
    assert.deepEqual(await store.getBatchState("B1"), state);
  });

  it("new MemoryRulesStore() copies its data", async () => {
    const limits = { year: 2025, limits: { electiveDeferral: "23500" } };
    const store = new MemoryRulesStore({ irsLimits: [limits] });
    limits.limits.electiveDeferral = "0";
    assert.equal((await store.getIrsLimits(2025)).limits.electiveDeferral, "23500");
  });
});

describe("MemoryCacheBackend", () => {
  it("get() keeps an entry until the last millisecond of its TTL", async () => {
    let now = 0;
    const cache = new MemoryCacheBackend({ now: () => now });
    await cache.setex("k", 2, 1);
    now = 1999;
    assert.equal(await cache.get("k"), 1);
    now = 2000;
    assert.equal(await cache.get("k"), null);
  });
});
